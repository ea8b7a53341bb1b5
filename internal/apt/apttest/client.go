package apttest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Client runs the stock apt-get and apt-cache against sources of the
// test's choosing, with every directory (state, cache, config, trusted
// keys) private to the client, so the host's apt setup neither helps nor
// interferes.
type Client struct {
	Dir     string // holds apt.conf, sources.list.d, state, cache
	Arch    string
	Foreign []string // further architectures (dpkg --add-architecture)
	t       testing.TB
}

// NewClient prepares a client for arch (default amd64) whose only source
// is the given sources.list.d file content (one-line "deb ..." lines or
// a deb822 .sources stanza, chosen by the name: "x.list" or "x.sources").
func NewClient(t testing.TB, arch, name, sources string) *Client {
	t.Helper()
	return NewMultiArchClient(t, arch, nil, name, sources)
}

// NewMultiArchClient is NewClient for a node with foreign architectures
// besides its native arch.
func NewMultiArchClient(t testing.TB, arch string, foreign []string, name, sources string) *Client {
	t.Helper()
	Need(t, "apt-get", "apt-cache", "gpgv")
	if arch == "" {
		arch = "amd64"
	}
	c := &Client{Dir: t.TempDir(), Arch: arch, Foreign: foreign, t: t}
	for _, d := range []string{"state/lists/partial", "cache/archives/partial", "etc/apt.conf.d", "etc/sources.list.d", "etc/preferences.d", "etc/trusted.gpg.d", "log"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(c.Dir, "state", "status"), nil)
	writeFile(t, filepath.Join(c.Dir, "etc", "sources.list"), nil)
	writeFile(t, filepath.Join(c.Dir, "etc", "sources.list.d", name), []byte(sources))
	writeFile(t, filepath.Join(c.Dir, "apt.conf"), []byte(c.config()))
	return c
}

func (c *Client) config() string {
	d := c.Dir
	return fmt.Sprintf(`Dir::Etc::Main "/dev/null";
Dir::Etc::Parts "%[1]s/etc/apt.conf.d";
Dir::Etc::SourceList "%[1]s/etc/sources.list";
Dir::Etc::SourceParts "%[1]s/etc/sources.list.d";
Dir::Etc::Preferences "%[1]s/etc/preferences";
Dir::Etc::PreferencesParts "%[1]s/etc/preferences.d";
Dir::Etc::Trusted "%[1]s/etc/trusted.gpg";
Dir::Etc::TrustedParts "%[1]s/etc/trusted.gpg.d";
Dir::State "%[1]s/state";
Dir::State::status "%[1]s/state/status";
Dir::Cache "%[1]s/cache";
Dir::Log "%[1]s/log";
APT::Architecture "%[2]s";
APT::Architectures { "%[2]s";%[3]s };
APT::Sandbox::User "root";
Debug::NoLocking "true";
Acquire::Languages "none";
Acquire::Retries "0";
Acquire::http::Proxy "DIRECT";
APT::Get::Assume-Yes "true";
`, d, c.Arch, foreignList(c.Foreign))
}

func foreignList(archs []string) string {
	var b strings.Builder
	for _, a := range archs {
		fmt.Fprintf(&b, " %q;", a)
	}
	return b.String()
}

// Run runs an apt tool (apt-get, apt-cache) with the client's config and
// returns its combined output and error.
func (c *Client) Run(tool string, args ...string) (string, error) {
	cmd := exec.Command(tool, args...)
	env := []string{"APT_CONFIG=" + filepath.Join(c.Dir, "apt.conf"), "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(strings.ToLower(kv), "http_proxy=") && !strings.HasPrefix(strings.ToLower(kv), "https_proxy=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// Must is Run that fails the test on error or when the output mentions a
// warning or error line (apt-get update exits 0 on some of those).
func (c *Client) Must(tool string, args ...string) string {
	c.t.Helper()
	out, err := c.Run(tool, args...)
	if err != nil {
		c.t.Fatalf("%s %v: %v\n%s", tool, args, err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "W:") || strings.HasPrefix(line, "E:") || strings.HasPrefix(line, "Err:") {
			c.t.Fatalf("%s %v: %s\nfull output:\n%s", tool, args, line, out)
		}
	}
	return out
}

// Update runs apt-get update (extra are more arguments, e.g. "-o",
// "Acquire::By-Hash=force").
func (c *Client) Update(extra ...string) string {
	c.t.Helper()
	return c.Must("apt-get", append(extra, "update")...)
}

// Download runs apt-get install --download-only pkgs and returns the .deb
// files that arrived, by file name. Earlier downloads are removed first.
func (c *Client) Download(pkgs ...string) map[string][]byte {
	c.t.Helper()
	arch := filepath.Join(c.Dir, "cache", "archives")
	old, _ := filepath.Glob(filepath.Join(arch, "*.deb"))
	for _, f := range old {
		os.Remove(f)
	}
	c.Must("apt-get", append([]string{"install", "--download-only", "--no-install-recommends"}, pkgs...)...)
	files, _ := filepath.Glob(filepath.Join(arch, "*.deb"))
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			c.t.Fatal(err)
		}
		out[filepath.Base(f)] = data
	}
	return out
}

var candidateRE = regexp.MustCompile(`(?m)^\s*Candidate:\s*(\S+)`)

// Candidate is the version apt-cache policy would install, or "(none)".
func (c *Client) Candidate(pkg string) string {
	c.t.Helper()
	out := c.Must("apt-cache", "policy", pkg)
	m := candidateRE.FindStringSubmatch(out)
	if m == nil {
		return "(none)"
	}
	return m[1]
}
