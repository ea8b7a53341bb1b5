// Package hostinit writes a starting mirrord.yaml from this host's own
// package sources ("mirror what this build node uses"): apt's
// sources.list(.d) with their Signed-By keys, and yum's .repo files.
package hostinit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/mirrord/mirrord/internal/apt"
	"github.com/mirrord/mirrord/internal/atomicfile"
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/yum"
)

// DefaultFilter keeps the first sync of a generated config small: a few
// packages with their dependencies.
func DefaultFilter() []string { return []string{"ca-certificates", "curl"} }

// Options say what Run reads and writes.
type Options struct {
	Root   string   // read the apt and yum configuration below this directory
	Output string   // the config file to write
	Filter []string // packages each source is filtered to (nil: everything)
	Force  bool     // overwrite Output
}

// ErrExists is wrapped when Output exists and Force is not set.
var ErrExists = errors.New("config file exists")

func Run(stdout io.Writer, o Options) error {
	if _, err := os.Stat(o.Output); err == nil && !o.Force {
		return fmt.Errorf("%w: %s exists; use --force to overwrite it, or --output to write elsewhere", ErrExists, o.Output)
	}
	entries, notes, err := apt.HostSources(o.Root)
	if err != nil {
		return err
	}
	dir := filepath.Dir(o.Output)
	aptSrcs, more := aptGroups(entries, o.Root, hostDebArch(), dir)
	notes = append(notes, more...)
	yumSrcs, more, err := yum.HostRepos(o.Root, hostRPMArch())
	if err != nil {
		return err
	}
	notes = append(notes, more...)
	if len(aptSrcs)+len(yumSrcs) == 0 {
		return fmt.Errorf("no usable apt sources or yum repos under %s (see the notes below); write the config by hand from examples/mirrord.yaml\n%s",
			o.Root, strings.Join(notes, "\n"))
	}
	if err := writeInlineKeys(aptSrcs); err != nil {
		return err
	}
	text := renderInit(aptSrcs, yumSrcs, notes, o.Filter)
	if err := writeChecked(o.Output, text); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s: %d apt source(s), %d yum repo(s)%s\nnext: mirrord --config %s sync && mirrord --config %s serve\n",
		o.Output, len(aptSrcs), len(yumSrcs), filterNote(o.Filter), o.Output, o.Output)
	return nil
}

func filterNote(filter []string) string {
	if len(filter) == 0 {
		return ", unfiltered"
	}
	return ", filtered to " + strings.Join(filter, ", ") + " and their dependencies"
}

// aptSource is one apt: entry of the generated config.
type aptSource struct {
	config.AptSource
	keyData []byte   // an inline Signed-By key, written to Keyring
	from    []string // file:line it came from
}

// aptGroups merges host entries that differ only in suite into one source
// each, named after the URL's last path segment.
func aptGroups(entries []apt.HostEntry, root, arch, dir string) ([]*aptSource, []string) {
	var out []*aptSource
	var notes []string
	byKey := map[string]*aptSource{}
	names := map[string]bool{}
	for _, e := range entries {
		archs := e.Architectures
		if len(archs) == 0 {
			archs = []string{arch}
		}
		key := strings.Join([]string{strings.TrimRight(e.URI, "/"), e.SignedBy, string(e.SignedByKey), strings.Join(e.Components, " "), strings.Join(archs, " ")}, "\x00")
		s := byKey[key]
		if s == nil {
			s = &aptSource{AptSource: config.AptSource{Name: nameFromURL(names, e.URI), URL: strings.TrimRight(e.URI, "/"),
				Components: e.Components, Architectures: archs}}
			if err := s.setKey(e, root, dir); err != nil {
				notes = append(notes, fmt.Sprintf("%s:%d: skipped %s: %v", e.File, e.Line, e.URI, err))
				continue
			}
			byKey[key] = s
			out = append(out, s)
		}
		for _, suite := range e.Suites {
			if !slices.Contains(s.Suites, suite) {
				s.Suites = append(s.Suites, suite)
			}
		}
		s.Sources = s.Sources || slices.Contains(e.Types, "deb-src")
		s.from = append(s.from, fmt.Sprintf("%s:%d", e.File, e.Line))
	}
	return out, notes
}

// setKey picks the keyring: Signed-By, an inline key (written next to the
// config), apt's global trusted keys, or none for trusted=yes entries.
func (s *aptSource) setKey(e apt.HostEntry, root, dir string) error {
	switch {
	case e.SignedBy != "":
		s.Keyring = e.SignedBy
	case e.SignedByKey != nil:
		s.Keyring, s.keyData = filepath.Join(dir, "keys", s.Name+".asc"), e.SignedByKey
	case e.Trusted:
		s.InsecureSkipVerify = true
	default:
		data, err := trustedKeys(root)
		if err != nil {
			return err
		}
		s.Keyring, s.keyData = filepath.Join(dir, "keys", "apt-trusted.gpg"), data
	}
	return nil
}

// trustedKeys concatenates apt's global keyrings (trusted.gpg and
// trusted.gpg.d/*) into one binary keyring.
func trustedKeys(root string) ([]byte, error) {
	dir := filepath.Join(root, "etc", "apt")
	files, _ := filepath.Glob(filepath.Join(dir, "trusted.gpg.d", "*"))
	files = append([]string{filepath.Join(dir, "trusted.gpg")}, files...)
	var out bytes.Buffer
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if block, err := armor.Decode(bytes.NewReader(data)); err == nil {
			if data, err = io.ReadAll(block.Body); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
		}
		out.Write(data)
	}
	if out.Len() == 0 {
		return nil, errors.New("no Signed-By and no keys in /etc/apt/trusted.gpg{,.d}: cannot verify it")
	}
	return out.Bytes(), nil
}

func writeInlineKeys(srcs []*aptSource) error {
	for _, s := range srcs {
		if s.keyData == nil {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(s.Keyring), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(s.Keyring, s.keyData, 0o644); err != nil {
			return fmt.Errorf("writing keyring for apt/%s: %w", s.Name, err)
		}
	}
	return nil
}

// nameFromURL derives a source name: the URL's last path segment, or its
// host when the path is empty.
func nameFromURL(used map[string]bool, raw string) string {
	rest := raw[strings.Index(raw, "://")+3:]
	host, path, _ := strings.Cut(rest, "/")
	name := filepath.Base("/" + strings.Trim(path, "/"))
	if name == "/" || name == "." {
		name = strings.Split(host, ".")[0]
	}
	return config.MakeName(used, name)
}

// hostRPMArch is rpm's name of this machine's architecture ($basearch).
func hostRPMArch() string {
	return map[string]string{"amd64": "x86_64", "arm64": "aarch64", "386": "i686", "ppc64le": "ppc64le", "s390x": "s390x"}[runtime.GOARCH]
}

// hostDebArch is dpkg's name of this machine's architecture.
func hostDebArch() string {
	m := map[string]string{"386": "i386", "arm": "armhf", "ppc64le": "ppc64el", "mips64le": "mips64el"}
	if a, ok := m[runtime.GOARCH]; ok {
		return a
	}
	return runtime.GOARCH
}

// renderInit writes the config text.
func renderInit(aptSrcs []*aptSource, yumSrcs []yum.HostRepo, notes, filter []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Written by `mirrord init` on %s from this host's package sources:\n", time.Now().UTC().Format("2006-01-02"))
	b.WriteString("# \"mirror what this build node uses\". Review it, then run `mirrord sync` and\n# `mirrord serve`; `mirrord client-config` prints what clients need.\n")
	for _, n := range notes {
		b.WriteString("# note: " + n + "\n")
	}
	b.WriteString("data_dir: data\nlisten: 127.0.0.1:8080\n# public_url: http://THIS-HOST:8080   # the URL clients use (default: the listen address)\n")
	if len(filter) > 0 {
		b.WriteString("# Each source is filtered to a few packages and their dependencies so the\n# first sync is quick; delete the filter lines to mirror everything.\n")
	}
	if len(aptSrcs) > 0 {
		b.WriteString("apt:\n")
	}
	for _, s := range aptSrcs {
		renderApt(&b, s, filter)
	}
	if len(yumSrcs) > 0 {
		b.WriteString("yum:\n")
	}
	for _, r := range yumSrcs {
		fmt.Fprintf(&b, "  - name: %s    # from %s\n    url: %s\n", r.Name, r.From, yamlStr(r.URL))
		renderKey(&b, "gpgkey", r.GPGKey, r.InsecureSkipVerify)
		renderFilter(&b, filter)
	}
	return b.String()
}

func renderApt(b *strings.Builder, s *aptSource, filter []string) {
	fmt.Fprintf(b, "  - name: %s    # from %s\n    url: %s\n", s.Name, strings.Join(s.from, ", "), yamlStr(s.URL))
	fmt.Fprintf(b, "    suites: %s\n    components: %s\n    architectures: %s\n", yamlList(s.Suites), yamlList(s.Components), yamlList(s.Architectures))
	renderKey(b, "keyring", s.Keyring, s.InsecureSkipVerify)
	if s.Sources {
		b.WriteString("    sources: true\n")
	}
	renderFilter(b, filter)
}

func renderKey(b *strings.Builder, key, path string, insecure bool) {
	if insecure {
		b.WriteString("    insecure_skip_verify: true   # this host trusts it without a key; add " + key + ": to verify it\n")
		return
	}
	fmt.Fprintf(b, "    %s: %s\n", key, yamlStr(path))
}

func renderFilter(b *strings.Builder, filter []string) {
	if len(filter) > 0 {
		fmt.Fprintf(b, "    filter: %s\n    filter_with_deps: true\n", yamlList(filter))
	}
}

var yamlPlain = regexp.MustCompile(`^[A-Za-z0-9_./:@+~-]+$`)

// yamlStr quotes s unless it is safe as a plain YAML scalar.
func yamlStr(s string) string {
	if yamlPlain.MatchString(s) && !strings.ContainsAny(s[:1], "-:@~") && !strings.Contains(s, ": ") {
		return s
	}
	return strconv.Quote(s)
}

func yamlList(l []string) string {
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = yamlStr(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// writeChecked writes text to path only if mirrord can load it.
func writeChecked(path, text string) error {
	return atomicfile.Write(path, []byte(text), 0o644, func(tmp string) error {
		if _, err := config.Load(tmp); err != nil {
			return fmt.Errorf("the generated config does not load (please report this): %w\n%s", err, text)
		}
		return nil
	})
}
