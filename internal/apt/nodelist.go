package apt

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"strings"

	"github.com/mirrord/mirrord/internal/debver"
)

// nodeList is a node's installed packages, as
// dpkg-query -W -f '${Package}=${Version}\n' prints them.
type nodeList struct {
	file   string
	pins   map[string]string // name → version
	names  []string          // in file order
	digest string            // of the file's content, for the settings digest
}

// readNodeList reads and checks a filter_from file. Every line is
// NAME=VERSION (a "NAME:ARCH" name is accepted, as dpkg-query prints
// ${binary:Package}); blank lines and '#' comments are skipped.
func readNodeList(file string) (*nodeList, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("filter_from: %w (write it on the node with: dpkg-query -W -f '${Package}=${Version}\\n' > FILE)", err)
	}
	sum := sha256.Sum256(data)
	nl := &nodeList{file: file, pins: map[string]string{}, digest: hex.EncodeToString(sum[:])}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, ver, ok := strings.Cut(line, "=")
		name, _, _ = strings.Cut(name, ":")
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("%s:%d: %q is not NAME=VERSION (the format of dpkg-query -W -f '${Package}=${Version}\\n')", file, n, line)
		}
		if _, err := debver.Parse(ver); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", file, n, name, err)
		}
		if old, dup := nl.pins[name]; dup && old != ver {
			return nil, fmt.Errorf("%s:%d: %s is listed at two versions, %s and %s", file, n, name, old, ver)
		} else if !dup {
			nl.names = append(nl.names, name)
		}
		nl.pins[name] = ver
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(nl.names) == 0 {
		return nil, fmt.Errorf("%s: lists no package (write it on the node with: dpkg-query -W -f '${Package}=${Version}\\n' > FILE)", file)
	}
	return nl, nil
}

// absent lists the NAME=VERSION entries no stanza of pkgs has.
func (nl *nodeList) absent(pkgs []*binPkg) []string {
	have := map[string]bool{}
	for _, p := range pkgs {
		have[p.Name+"="+p.Version] = true
	}
	var out []string
	for _, n := range nl.names {
		if nv := n + "=" + nl.pins[n]; !have[nv] {
			out = append(out, nv)
		}
	}
	return out
}
