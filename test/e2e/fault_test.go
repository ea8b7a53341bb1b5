package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/faultproxy"
	"github.com/mirrord/mirrord/internal/gitcache/gittest"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// faultSource is one source kind's upstream, wrapped by a fault proxy per
// run: yaml is its config entry for the proxy's URL, check compares a
// successful snapshot with what the upstream really holds.
type faultSource struct {
	upstream string
	yaml     func(proxyURL string) string
	check    func(t *testing.T, e *env, id string)
}

// faultTally is the report: per kind and fault, and in total.
type faultTally struct{ runs, ok, faults, corrupt atomic.Int64 }

// The unreliable network and the hostile mirror, over every source kind:
// each fault of faultproxy (each path broken on its first request) in front
// of apt, yum, git and file upstreams, through the real binary. A sync
// either succeeds with exactly the upstream's content or fails naming the
// upstream and the file; `mirrord verify` is clean after every run; no
// blob in the store is corrupt; stalls end after sync.read_timeout.
func TestFaultInjection(t *testing.T) {
	if testing.Short() {
		t.Skip("36 syncs through a fault proxy")
	}
	var total faultTally
	kinds := map[string]func(t *testing.T) faultSource{
		"apt": aptFaultSource, "yum": yumFaultSource, "git": gitFaultSource, "file": fileFaultSource,
	}
	t.Run("kinds", func(t *testing.T) {
		for name, mk := range kinds {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				src := mk(t)
				for _, k := range faultproxy.Kinds() {
					runFault(t, name, src, k, &total)
				}
			})
		}
	})
	t.Logf("fault injection: %d syncs, %d faults injected, %d syncs succeeded with verified content, %d corrupt blobs",
		total.runs.Load(), total.faults.Load(), total.ok.Load(), total.corrupt.Load())
	if total.corrupt.Load() != 0 {
		t.Errorf("%d corrupt blobs in the store", total.corrupt.Load())
	}
}

func runFault(t *testing.T, kind string, src faultSource, k faultproxy.Kind, total *faultTally) {
	t.Helper()
	p := faultproxy.New(t, src.upstream, faultproxy.Options{Kind: k, Stall: 5 * time.Second})
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.dir, "token"), []byte("s3cret\n"), 0o600)
	seedSigningKey(t, filepath.Join(e.dir, "data", "signing", "mirrord.asc"))
	e.writeConfig("data_dir: data\nsync: {retries: 3, read_timeout: 1s}\n" + src.yaml(p.URL))
	start := time.Now()
	r := e.run("sync")
	took := time.Since(start)
	total.runs.Add(1)
	total.faults.Add(p.Faults())
	host := strings.TrimPrefix(p.URL, "http://")
	if i := strings.IndexByte(host, '/'); i >= 0 {
		host = host[:i]
	}
	outcome := "ok"
	switch {
	case r.code == 0:
		total.ok.Add(1)
		id := strings.TrimSpace(r.stdout)
		src.check(t, e, id)
	case !strings.Contains(r.stderr, host) && !strings.Contains(r.stderr, p.Elsewhere):
		t.Errorf("%v: sync failed without naming the upstream %s:\n%s", k, host, r.stderr)
	default:
		outcome = "failed: " + faultLine(r.stderr)
		if list := strings.TrimSpace(e.must("snapshot", "list", "--json")); list != "[]" {
			t.Errorf("%v: a failed sync left a snapshot: %s", k, list)
		}
	}
	if v := e.run("verify"); v.code != 0 {
		t.Errorf("%v: verify after the run: exit %d\n%s%s", k, v.code, v.stdout, v.stderr)
	}
	if bad := corruptBlobs(t, e); len(bad) > 0 {
		total.corrupt.Add(int64(len(bad)))
		t.Errorf("%v: corrupt blobs in the store: %v", k, bad)
	}
	t.Logf("%-4s %-22v faults=%-3d %6.1fs %s", kind, k, p.Faults(), took.Seconds(), outcome)
}

func faultLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	l := lines[len(lines)-1]
	if len(l) > 220 {
		l = l[:220] + "..."
	}
	return l
}

// corruptBlobs re-hashes every blob file: its name must be its sha256.
func corruptBlobs(t *testing.T, e *env) []string {
	t.Helper()
	var bad []string
	filepath.WalkDir(filepath.Join(e.dir, "data", "blobs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			bad = append(bad, p+": "+err.Error())
			return nil
		}
		if s := sha256.Sum256(data); hex.EncodeToString(s[:]) != d.Name() {
			bad = append(bad, p)
		}
		return nil
	})
	return bad
}

// tree loads one source's tree of a snapshot from the store.
func (e *env) tree(id, kind, name string) *snapshot.Tree {
	e.t.Helper()
	for _, s := range e.show(id).Sources {
		if s.Kind == kind && s.Name == name {
			f, err := os.Open(filepath.Join(e.dir, "data", "blobs", "sha256", s.Tree[:2], s.Tree))
			if err != nil {
				e.t.Fatal(err)
			}
			defer f.Close()
			tr, err := snapshot.DecodeTree(f)
			if err != nil {
				e.t.Fatal(err)
			}
			return tr
		}
	}
	e.t.Fatalf("snapshot %s has no %s/%s", id, kind, name)
	return nil
}

// checkAgainstDir: every entry under one of prefixes is byte-identical to
// the upstream's file at that path, and every such upstream file is there.
func checkAgainstDir(t *testing.T, tr *snapshot.Tree, dir string, prefixes ...string) {
	t.Helper()
	want := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		rel, _ := filepath.Rel(dir, p)
		if err == nil && !d.IsDir() && hasAnyPrefix(filepath.ToSlash(rel), prefixes) {
			data, _ := os.ReadFile(p)
			want[filepath.ToSlash(rel)] = shaHex(data)
		}
		return nil
	})
	got := map[string]string{}
	for _, en := range tr.Entries {
		if hasAnyPrefix(en.Path, prefixes) {
			got[en.Path] = string(en.Digest)
		}
	}
	if len(want) == 0 || !maps.Equal(got, want) {
		t.Errorf("snapshot content differs from the upstream's (%d files vs %d)", len(got), len(want))
	}
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func aptFaultSource(t *testing.T) faultSource {
	up := demoUpstream(t)
	return faultSource{
		upstream: up.URL,
		yaml: func(u string) string {
			return fmt.Sprintf("apt:\n  - name: demo\n    url: %s\n    suites: [stable]\n    keyring: %s\n", u, up.Key.Keyring)
		},
		check: func(t *testing.T, e *env, id string) {
			checkAgainstDir(t, e.tree(id, "apt", "demo"), up.Dir, "pool/")
		},
	}
}

func yumFaultSource(t *testing.T) faultSource {
	up := newYumUpstream(t)
	key := up.fix.Signer.PublicKeyFile
	return faultSource{
		upstream: up.URL,
		yaml: func(u string) string {
			return fmt.Sprintf("yum:\n  - name: base\n    url: %s/\n    gpgkey: %s\n", u, key)
		},
		check: func(t *testing.T, e *env, id string) {
			checkAgainstDir(t, e.tree(id, "yum", "base"), up.dir, "repodata/", "Packages/")
		},
	}
}

func gitFaultSource(t *testing.T) faultSource {
	gittest.RequireGit(t)
	up := gittest.NewUpstream(t, "up")
	gittest.Populate(t, up, 40)
	return faultSource{
		upstream: up.URL,
		yaml: func(u string) string {
			return fmt.Sprintf("git:\n  repos:\n    - {name: up, url: %s}\n", u)
		},
		check: func(t *testing.T, e *env, id string) {
			if got, want := e.gitSource(id, "up").Refs, up.Refs(t); !maps.Equal(got, want) {
				t.Errorf("refs %v\nwant upstream's %v", got, want)
			}
		},
	}
}

func fileFaultSource(t *testing.T) faultSource {
	up := newUpstream(t)
	files := []fileSpec{{"a.img", randBytes(1, 300<<10)}, {"b.tar.gz", randBytes(2, 70<<10)}, {"c.txt", []byte("small\n")}}
	for _, f := range files {
		up.set(f.path, f.data)
	}
	return faultSource{
		upstream: up.URL,
		yaml: func(u string) string {
			var b bytes.Buffer
			b.WriteString("file:\n  - name: images\n    files:\n")
			for _, f := range files {
				fmt.Fprintf(&b, "      - {url: %s/%s, path: %s, sha256: %s}\n", u, f.path, f.path, sha(f.data))
			}
			return b.String()
		},
		check: func(t *testing.T, e *env, id string) {
			tr := e.tree(id, "file", "images")
			for _, f := range files {
				if en, ok := tr.Lookup(f.path); !ok || string(en.Digest) != sha(f.data) {
					t.Errorf("%s: %+v", f.path, en)
				}
			}
		},
	}
}
