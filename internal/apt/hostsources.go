package apt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// HostEntry is one repository a host's apt uses: one line of a
// sources.list file, or one (Types × URIs) of a deb822 .sources stanza.
type HostEntry struct {
	File          string // where it was read, for comments and messages
	Line          int
	Types         []string // "deb", "deb-src"
	URI           string
	Suites        []string
	Components    []string
	Architectures []string // from arch= / Architectures:, else empty
	SignedBy      string   // keyring path from signed-by / Signed-By, resolved below root
	SignedByKey   []byte   // an inline armored key (deb822 Signed-By block)
	Trusted       bool     // trusted=yes: apt does not check signatures
}

// HostSources reads the apt sources of the system below root ("/" for this
// host): etc/apt/sources.list, and sources.list.d/*.list and *.sources.
// Disabled stanzas, comments and non-http(s) URIs are skipped, each with
// a note in the returned list.
func HostSources(root string) ([]HostEntry, []string, error) {
	dir := filepath.Join(root, "etc", "apt")
	files := []string{filepath.Join(dir, "sources.list")}
	for _, pat := range []string{"*.list", "*.sources"} {
		m, _ := filepath.Glob(filepath.Join(dir, "sources.list.d", pat))
		files = append(files, m...)
	}
	sort.Strings(files[1:])
	var out []HostEntry
	var notes []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading %s: %w", f, err)
		}
		var es []HostEntry
		var ns []string
		if strings.HasSuffix(f, ".sources") {
			es, ns, err = parseDeb822Sources(f, data, root)
		} else {
			es, ns = parseOneLineSources(f, data, root)
		}
		if err != nil {
			return nil, nil, err
		}
		out, notes = append(out, es...), append(notes, ns...)
	}
	return out, notes, nil
}

// parseOneLineSources reads "deb [opts] URI SUITE [COMPONENT...]" lines.
func parseOneLineSources(file string, data []byte, root string) ([]HostEntry, []string) {
	var out []HostEntry
	var notes []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		e, err := parseOneLine(line, root)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s:%d: skipped: %v", file, n, err))
			continue
		}
		e.File, e.Line = file, n
		out = append(out, e)
	}
	return out, notes
}

func parseOneLine(line, root string) (HostEntry, error) {
	var e HostEntry
	typ, rest, _ := strings.Cut(line, " ")
	if typ != "deb" && typ != "deb-src" {
		return e, fmt.Errorf("unknown type %q", typ)
	}
	e.Types = []string{typ}
	rest = strings.TrimSpace(rest)
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return e, errors.New("unclosed '['")
		}
		for _, opt := range strings.Fields(rest[1:end]) {
			k, v, _ := strings.Cut(opt, "=")
			e.option(k, v, root)
		}
		rest = rest[end+1:]
	}
	f := strings.Fields(rest)
	if len(f) < 2 {
		return e, errors.New("want URI and suite")
	}
	e.URI, e.Suites, e.Components = f[0], []string{f[1]}, f[2:]
	return e, e.check()
}

// option applies a one-line option (arch=, signed-by=, trusted=).
func (e *HostEntry) option(k, v, root string) {
	switch strings.TrimRight(k, "+-") {
	case "arch":
		e.Architectures = strings.Split(v, ",")
	case "signed-by":
		e.SignedBy = underRoot(root, strings.Split(v, ",")[0])
	case "trusted":
		e.Trusted = v == "yes"
	}
}

// check refuses what mirrord cannot mirror.
func (e *HostEntry) check() error {
	if !strings.HasPrefix(e.URI, "http://") && !strings.HasPrefix(e.URI, "https://") {
		return fmt.Errorf("URI %s: mirrord mirrors http and https repositories only", e.URI)
	}
	for _, s := range e.Suites {
		if strings.HasSuffix(s, "/") {
			return fmt.Errorf("flat repository (suite %q): mirrord mirrors repositories with a dists/ tree", s)
		}
	}
	if len(e.Components) == 0 {
		return errors.New("no components")
	}
	return nil
}

func underRoot(root, p string) string {
	if root == "" || root == "/" || !filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}

// parseDeb822Sources reads .sources stanzas.
func parseDeb822Sources(file string, data []byte, root string) ([]HostEntry, []string, error) {
	p := newParagraphs(bytes.NewReader(data))
	var out []HostEntry
	var notes []string
	for {
		ok, err := p.next()
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", file, err)
		}
		if !ok {
			return out, notes, nil
		}
		es, err := stanzaEntries(p, root)
		if err != nil {
			notes = append(notes, fmt.Sprintf("%s:%d: skipped: %v", file, p.start, err))
			continue
		}
		for i := range es {
			es[i].File, es[i].Line = file, p.start
		}
		out = append(out, es...)
	}
}

func stanzaEntries(p *paragraphs, root string) ([]HostEntry, error) {
	get := func(name string) string {
		v, _ := p.get(name)
		return string(v)
	}
	if strings.EqualFold(get("Enabled"), "no") {
		return nil, errors.New("disabled (Enabled: no)")
	}
	tmpl := HostEntry{Types: strings.Fields(get("Types")), Suites: strings.Fields(get("Suites")),
		Components: strings.Fields(get("Components")), Architectures: strings.Fields(get("Architectures")),
		Trusted: strings.EqualFold(get("Trusted"), "yes")}
	if sb := strings.TrimSpace(get("Signed-By")); strings.Contains(sb, "BEGIN PGP") {
		tmpl.SignedByKey = inlineKey(sb)
	} else if sb != "" {
		tmpl.SignedBy = underRoot(root, strings.Fields(sb)[0])
	}
	var out []HostEntry
	var errs []error
	for _, uri := range strings.Fields(get("URIs")) {
		e := tmpl
		e.URI = uri
		if err := e.check(); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, errors.Join(append(errs, errors.New("no usable URIs"))...)
	}
	return out, nil
}

// inlineKey turns a deb822 multi-line Signed-By value back into an
// armored key: continuation lines lose one leading space, and "." stands
// for an empty line.
func inlineKey(v string) []byte {
	var b bytes.Buffer
	for _, line := range strings.Split(v, "\n") {
		line = strings.TrimSpace(line)
		if line == "." {
			line = ""
		}
		b.WriteString(line + "\n")
	}
	return b.Bytes()
}
