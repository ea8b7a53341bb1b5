package deploy

import (
	"fmt"
	"net"
	"os"
)

// Notify sends state ("READY=1", "STOPPING=1", ...) to the service manager
// as sd_notify(3) does: one datagram to the unix socket named by
// $NOTIFY_SOCKET (a leading '@' names an abstract socket). It returns
// false without doing anything when $NOTIFY_SOCKET is unset, as it is
// outside a Type=notify unit.
func Notify(state string) (bool, error) {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return false, nil
	}
	if name[0] == '@' {
		name = "\x00" + name[1:]
	}
	conn, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return false, fmt.Errorf("notifying systemd over $NOTIFY_SOCKET %s: %w", os.Getenv("NOTIFY_SOCKET"), err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return false, fmt.Errorf("notifying systemd over $NOTIFY_SOCKET %s: %w", os.Getenv("NOTIFY_SOCKET"), err)
	}
	return true, nil
}
