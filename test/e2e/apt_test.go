package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/signing"
)

// aptYAML is a config with one apt source for up; extra is appended to
// the source's YAML mapping (indented four spaces).
func aptYAML(up *apttest.Repo, addr, extra string) string {
	return fmt.Sprintf(`data_dir: data
public_url: http://%s
auth: {token_file: token}
sync: {concurrency: 2, per_host: 4, retries: 1}
apt:
  - name: demo
    url: %s
    suites: [stable]
    components: [main]
    architectures: [amd64]
    keyring: %s
%s`, addr, up.URL, up.Key.Keyring, extra)
}

// newAptEnv writes the config; addr is where `serve` will listen (it is
// also the public_url, which client-config and the Release use).
func newAptEnv(t *testing.T, up *apttest.Repo, addr, extra string) *env {
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.dir, "token"), []byte("s3cret\n"), 0o600)
	e.writeConfig(aptYAML(up, addr, extra))
	seedSigningKey(t, filepath.Join(e.dir, "data", "signing", "mirrord.asc"))
	return e
}

// Generating mirrord's RSA key takes seconds (more under -race): make one
// per test binary and place a copy where mirrord looks for it.
var (
	keyOnce sync.Once
	keyData []byte
)

func seedSigningKey(t *testing.T, path string) {
	t.Helper()
	keyOnce.Do(func() {
		p := filepath.Join(t.TempDir(), "k.asc")
		if _, err := signing.LoadOrCreate(p, "mirrord e2e"); err != nil {
			t.Fatal(err)
		}
		keyData, _ = os.ReadFile(p)
	})
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, keyData, 0o600); err != nil {
		t.Fatal(err)
	}
}

// debCache shares built .debs between the apt tests.
var debCache = apttest.NewDebCache()

// demoUpstream is a published upstream of apttest.Demo().
func demoUpstream(t *testing.T, pkgs ...apttest.Package) *apttest.Repo {
	up := apttest.New(t, apttest.Options{Debs: debCache})
	if pkgs == nil {
		pkgs = apttest.Demo()
	}
	up.Add(t, pkgs...)
	up.Publish(t)
	return up
}

// mirrordKey downloads the served public key for apt's signed-by.
func mirrordKey(t *testing.T, base string) string {
	t.Helper()
	resp, body := get(t, base+"/keys/mirrord.asc", nil)
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte("BEGIN PGP PUBLIC KEY BLOCK")) {
		t.Fatalf("/keys/mirrord.asc: %d %q", resp.StatusCode, body)
	}
	p := filepath.Join(t.TempDir(), "mirrord.asc")
	os.WriteFile(p, body, 0o644)
	return p
}

// aptClient configures stock apt from `mirrord client-config`, with the
// Signed-By path pointed at the downloaded key.
func aptClient(t *testing.T, e *env, key string, args ...string) *apttest.Client {
	t.Helper()
	cfg := e.must(append([]string{"client-config"}, args...)...)
	cfg = strings.ReplaceAll(cfg, "/etc/apt/keyrings/mirrord.asc", key)
	if !strings.Contains(cfg, "Types: deb") || !strings.Contains(cfg, "Signed-By: "+key) {
		t.Fatalf("client-config:\n%s", cfg)
	}
	return apttest.NewClient(t, "", "mirrord.sources", cfg)
}

func shaHex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// checkDebs checks that exactly the named packages arrived, each
// byte-identical to one of debs.
func checkDebs(t *testing.T, debs []apttest.Deb, got map[string][]byte, want ...string) {
	t.Helper()
	var names []string
	for file, data := range got {
		name, ver := strings.Split(file, "_")[0], ""
		for _, d := range debs {
			if d.Name == name && d.SHA256 == shaHex(data) {
				ver = d.Version
			}
		}
		if ver == "" {
			t.Errorf("%s matches no upstream package", file)
		}
		names = append(names, name+" "+ver)
	}
	slices.Sort(names)
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Errorf("downloaded %v\nwant %v", names, want)
	}
}

var demoInstall = []string{
	"demo-alt-b 1.0-1", "demo-app 1.0-1", "demo-base 2:0.9-1", "demo-data 1.0-1", "demo-lib 1.2~rc1-1",
	"demo-mta 1.0-1", "demo-py 3.11.2-1", "demo-vprov 1.0-1",
}

// The whole story with stock apt against `mirrord serve`: install from a
// snapshot verified by mirrord's key, by-hash, an upstream upgrade shown
// by snapshot diff, the old snapshot still installing the old version, a
// channel following promotions, and an unchanged re-sync costing one
// request.
func TestAptMirror(t *testing.T) {
	up := demoUpstream(t)
	addr := freePort(t)
	e := newAptEnv(t, up, addr, "")
	id1 := e.sync()
	base := e.serve(addr)
	key := mirrordKey(t, base)

	c1 := aptClient(t, e, key, "--snapshot", id1)
	c1.Update()
	checkDebs(t, up.Debs(), c1.Download("demo-app"), demoInstall...)
	aptClient(t, e, key, "--snapshot", id1).Update("-o", "Acquire::By-Hash=force")

	up.ResetRequests()
	if id := e.sync(); e.show(id).Sources[0].Tree != e.show(id1).Sources[0].Tree {
		t.Error("an unchanged upstream produced a different tree")
	}
	if n := up.Requests("/"); n != 1 {
		t.Errorf("unchanged re-sync made %d upstream requests, want 1", n)
	}

	before := up.Debs()
	up.Add(t, apttest.Package{Name: "demo-app", Version: "1.1-1", Depends: "demo-lib (>= 1.0)"})
	up.Remove("demo-app", "1.0-1")
	up.Publish(t)
	id2 := e.sync()
	if diff := e.must("snapshot", "diff", id1, id2); !strings.Contains(diff, "~ demo-app:amd64 1.0-1 -> 1.1-1") {
		t.Errorf("snapshot diff:\n%s", diff)
	}
	old := aptClient(t, e, key, "--snapshot", id1)
	old.Update()
	checkDebs(t, before, old.Download("demo-app"), demoInstall...)

	e.must("snapshot", "promote", id1, "production")
	ch := aptClient(t, e, key, "--channel", "production")
	waitCandidate(t, ch, "demo-app", "1.0-1")
	e.must("snapshot", "promote", id2, "production")
	waitCandidate(t, ch, "demo-app", "1.1-1")
}

// waitCandidate runs apt-get update until the channel offers version v
// (the server re-reads channel pointers within a fraction of a second).
func waitCandidate(t *testing.T, c *apttest.Client, pkg, v string) {
	t.Helper()
	var got string
	for range 20 {
		c.Update()
		if got = c.Candidate(pkg); got == v {
			return
		}
	}
	t.Fatalf("channel offers %s %s, want %s", pkg, got, v)
}

// filter: [demo-app] with filter_with_deps: the served index holds exactly
// the dependency closure, and apt installs demo-app from it.
func TestAptFilterWithDeps(t *testing.T) {
	up := demoUpstream(t)
	addr := freePort(t)
	e := newAptEnv(t, up, addr, "    filter: [demo-app]\n    filter_with_deps: true\n")
	id := e.sync()
	base := e.serve(addr)
	resp, body := get(t, base+"/snapshots/"+id+"/apt/demo/dists/stable/main/binary-amd64/Packages", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("Packages: %d", resp.StatusCode)
	}
	var got []string
	field := func(stanza []byte, name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `: (\S+)`).FindSubmatch(stanza)
		if m == nil {
			return ""
		}
		return string(m[1])
	}
	for _, stanza := range bytes.Split(bytes.TrimSpace(body), []byte("\n\n")) {
		got = append(got, field(stanza, "Package")+" "+field(stanza, "Version"))
	}
	slices.Sort(got)
	if want := apttest.DemoClosure(); !slices.Equal(got, want) {
		t.Errorf("snapshot holds %v\nwant the closure %v", got, want)
	}
	c := aptClient(t, e, mirrordKey(t, base), "--snapshot", id)
	c.Update()
	checkDebs(t, up.Debs(), c.Download("demo-app"), demoInstall...)
}

// Bad upstream data: a clear error naming the file, and no snapshot.
func TestAptBadInput(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, up *apttest.Repo)
		want   []string
	}{
		{"tampered InRelease", func(t *testing.T, up *apttest.Repo) {
			in := up.ReadFile(t, "dists/stable/InRelease")
			up.WriteFile(t, "dists/stable/InRelease", bytes.Replace(in, []byte("Suite: stable"), []byte("Suite: stolen"), 1))
		}, []string{"dists/stable/InRelease", "signature check", "bad signature"}},
		{"deb with wrong sha256", func(t *testing.T, up *apttest.Repo) {
			d := up.Deb(t, "demo-base", "", "")
			bad := bytes.Clone(d.Data)
			bad[100] ^= 1
			up.WriteFile(t, d.Filename, bad)
		}, []string{"demo-base_0.9-1_amd64.deb", "sha256 mismatch"}},
		{"Packages differs from Release", func(t *testing.T, up *apttest.Repo) {
			p := "dists/stable/main/binary-amd64/Packages.xz"
			b := up.ReadFile(t, p)
			b[len(b)/2] ^= 1
			up.WriteFile(t, p, b)
			p = "dists/stable/main/binary-amd64/Packages"
			b = up.ReadFile(t, p)
			b[len(b)/2] ^= 1
			up.WriteFile(t, p, b)
		}, []string{"main/binary-amd64/Packages", "sha256 mismatch"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := demoUpstream(t, apttest.Demo()[:2]...)
			tt.break_(t, up)
			e := newAptEnv(t, up, "127.0.0.1:1", "")
			r := e.run("sync")
			if r.code == 0 {
				t.Fatalf("sync succeeded: %s", r.stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if list := e.must("snapshot", "list"); regexp.MustCompile(`\d{8}T\d{6}Z`).MatchString(list) {
				t.Errorf("a snapshot was made:\n%s", list)
			}
		})
	}
}

// The upstream dies mid-sync: no snapshot; the next sync succeeds and
// fetches only what the failed one did not store.
func TestAptUpstreamDies(t *testing.T) {
	up := demoUpstream(t)
	var served atomic.Int32
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/pool/") || served.Add(1) <= 4 {
			return false
		}
		if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
			conn.Close()
		}
		return true
	})
	e := newAptEnv(t, up, "127.0.0.1:1", "")
	if r := e.run("sync"); r.code == 0 || !strings.Contains(r.stderr, "pool/main/") {
		t.Fatalf("sync against a dying upstream: exit %d\n%s", r.code, r.stderr)
	}
	if list := e.must("snapshot", "list"); regexp.MustCompile(`\d{8}T\d{6}Z`).MatchString(list) {
		t.Fatalf("a snapshot was made:\n%s", list)
	}
	stored := e.blobs()
	up.WaitQuiet("/pool/")
	up.SetHook(nil)
	up.ResetRequests()
	e.sync()
	for _, d := range up.Debs() {
		n := up.Requests("/" + d.Filename)
		if stored[d.SHA256] && n != 0 {
			t.Errorf("%s was stored by the failed sync but fetched again", d.Filename)
		}
		if !stored[d.SHA256] && n != 1 {
			t.Errorf("%s: %d requests, want 1", d.Filename, n)
		}
	}
}
