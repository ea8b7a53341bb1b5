package yum

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/mirrord/mirrord/internal/config"
)

// HostRepo is one enabled repository of a host's yum configuration.
type HostRepo struct {
	Name               string // the section name, made a valid source name
	URL                string // the first baseurl, with $basearch and $releasever expanded
	GPGKey             string // the first gpgkey, without file://
	InsecureSkipVerify bool   // gpgcheck=0 and no key
	From               string // "FILE [section]"
}

// HostRepos reads root/etc/yum.repos.d/*.repo as dnf would on a host of
// architecture basearch (rpm's name: x86_64, aarch64, ...). Repositories
// mirrord cannot mirror (disabled, mirrorlist/metalink only, no key with
// gpgcheck on, not http) are returned as notes naming the file and section.
func HostRepos(root, basearch string) ([]HostRepo, []string, error) {
	files, _ := filepath.Glob(filepath.Join(root, "etc", "yum.repos.d", "*.repo"))
	vars := repoVars(root, basearch)
	names := map[string]bool{}
	var out []HostRepo
	var notes []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", f, err)
		}
		for _, sec := range parseINI(data) {
			r, err := hostRepoFrom(sec, vars)
			if err != nil {
				notes = append(notes, fmt.Sprintf("%s [%s]: skipped: %v", f, sec.name, err))
				continue
			}
			r.Name, r.From = config.MakeName(names, sec.name), f+" ["+sec.name+"]"
			out = append(out, r)
		}
	}
	return out, notes, nil
}

func hostRepoFrom(sec iniSection, vars *strings.Replacer) (HostRepo, error) {
	var r HostRepo
	if sec.get("enabled", "1") == "0" {
		return r, errors.New("enabled=0")
	}
	urls := strings.FieldsFunc(sec.get("baseurl", ""), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' })
	if len(urls) == 0 {
		return r, errors.New("no baseurl (mirrorlist/metalink only): mirrord needs a base URL")
	}
	r.URL = vars.Replace(urls[0])
	if !strings.HasPrefix(r.URL, "http://") && !strings.HasPrefix(r.URL, "https://") {
		return r, fmt.Errorf("baseurl %s: mirrord mirrors http and https repositories only", r.URL)
	}
	if strings.Contains(r.URL, "$") {
		return r, fmt.Errorf("baseurl %s: unresolved variable", r.URL)
	}
	keys := strings.FieldsFunc(sec.get("gpgkey", ""), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' })
	switch {
	case len(keys) > 0:
		r.GPGKey = strings.TrimPrefix(vars.Replace(keys[0]), "file://")
	case sec.get("gpgcheck", "1") == "0":
		r.InsecureSkipVerify = true
	default:
		return r, errors.New("gpgcheck is on but no gpgkey is given")
	}
	return r, nil
}

// repoVars expands $basearch, $arch and $releasever as dnf would on root.
func repoVars(root, arch string) *strings.Replacer {
	rel := ""
	if data, err := os.ReadFile(filepath.Join(root, "etc", "os-release")); err == nil {
		if m := regexp.MustCompile(`(?m)^VERSION_ID="?([0-9]+)`).FindSubmatch(data); m != nil {
			rel = string(m[1])
		}
	}
	pairs := []string{"$basearch", arch, "$arch", arch}
	if rel != "" {
		pairs = append(pairs, "$releasever", rel)
	}
	return strings.NewReplacer(pairs...)
}

type iniSection struct {
	name string
	keys map[string]string
}

func (s iniSection) get(k, def string) string {
	if v, ok := s.keys[k]; ok {
		return v
	}
	return def
}

// parseINI reads a .repo file: [sections] of key=value lines, where an
// indented line continues the previous value.
func parseINI(data []byte) []iniSection {
	var out []iniSection
	var last string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		raw := sc.Text()
		line := strings.TrimSpace(raw)
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && strings.HasSuffix(line, "]"):
			out = append(out, iniSection{name: line[1 : len(line)-1], keys: map[string]string{}})
		case len(out) == 0:
		case raw[0] == ' ' || raw[0] == '\t':
			if last != "" {
				out[len(out)-1].keys[last] += "\n" + line
			}
		default:
			k, v, _ := strings.Cut(line, "=")
			last = strings.ToLower(strings.TrimSpace(k))
			out[len(out)-1].keys[last] = strings.TrimSpace(v)
		}
	}
	return out
}
