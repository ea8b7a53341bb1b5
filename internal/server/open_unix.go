//go:build unix

package server

import (
	"os"
	"syscall"
)

// openFile opens a blob file read-only. Unlike os.Open it does not try to
// register the (regular, never pollable) file with the netpoller, which
// saves four fcntl calls and a failing epoll_ctl per request.
func openFile(path string) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return os.NewFile(uintptr(fd), path), nil
	}
}
