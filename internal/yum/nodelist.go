package yum

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/mirrord/mirrord/internal/textlist"
)

// ErrNotUpstream marks filter_from entries the upstream does not carry.
var ErrNotUpstream = errors.New("listed packages are not in the upstream")

// nodeList is a node's installed packages, as
// rpm -qa --qf '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n' prints them.
type nodeList struct {
	file    string
	entries []string        // NAME-VERSION-RELEASE.ARCH, in file order
	want    map[string]bool // the same, as a set
}

// readNodeList reads and checks a filter_from file; blank lines and '#'
// comments are skipped, gpg-pubkey pseudo packages (which rpm -qa lists
// and no repository has) too.
func readNodeList(file string) (*nodeList, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("filter_from: %w (write it on the node with: rpm -qa --qf '%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}\\n' > FILE)", err)
	}
	nl := &nodeList{file: file, want: map[string]bool{}}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "gpg-pubkey-") {
			continue
		}
		if _, _, _, _, ok := splitNVRA(line); !ok {
			return nil, fmt.Errorf("%s:%d: %q is not NAME-VERSION-RELEASE.ARCH (the format of rpm -qa --qf '%%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}\\n')", file, n, line)
		}
		if !nl.want[line] {
			nl.want[line] = true
			nl.entries = append(nl.entries, line)
		}
	}
	if len(nl.entries) == 0 {
		return nil, fmt.Errorf("%s: lists no package", file)
	}
	return nl, nil
}

// splitNVRA splits NAME-VERSION-RELEASE.ARCH.
func splitNVRA(s string) (name, version, release, arch string, ok bool) {
	dot := strings.LastIndexByte(s, '.')
	if dot <= 0 || strings.ContainsAny(s, " \t") {
		return "", "", "", "", false
	}
	nvr, arch := s[:dot], s[dot+1:]
	r := strings.LastIndexByte(nvr, '-')
	if r <= 0 {
		return "", "", "", "", false
	}
	v := strings.LastIndexByte(nvr[:r], '-')
	if v <= 0 || arch == "" {
		return "", "", "", "", false
	}
	return nvr[:v], nvr[v+1 : r], nvr[r+1:], arch, true
}

// nvra is p as the node list writes it (no epoch).
func (p *pkg) nvra() string {
	return p.Name + "-" + p.EVR.Version + "-" + p.EVR.Release + "." + p.Arch
}

// roots returns the listed packages, failing with every entry the
// upstream lacks.
func (nl *nodeList) roots(pkgs []*pkg) ([]*pkg, error) {
	var out []*pkg
	found := map[string]bool{}
	for _, p := range pkgs {
		if k := p.nvra(); nl.want[k] {
			out = append(out, p)
			found[k] = true
		}
	}
	var miss []string
	for _, e := range nl.entries {
		if !found[e] {
			miss = append(miss, e)
		}
	}
	if len(miss) > 0 {
		return nil, fmt.Errorf("%w: filter_from %s lists %d packages the upstream does not have: %s", ErrNotUpstream, nl.file, len(miss), textlist.FirstN(miss, 50))
	}
	return out, nil
}
