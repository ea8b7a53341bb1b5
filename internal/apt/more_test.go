package apt

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// verbatim: true serves the upstream's signed files byte-identical, and
// apt verifies them with the upstream's key; by-hash upstreams are read
// through by-hash.
func TestVerbatim(t *testing.T) {
	up := demoRepo(t, apttest.Options{ByHash: true})
	m := newMirror(t)
	up.ResetRequests()
	rec := m.mustSync(newSource(t, aptConfig(up, func(c *config.AptSource) { c.Verbatim = true })))
	for _, p := range []string{"dists/stable/InRelease", "dists/stable/main/binary-amd64/Packages", "dists/stable/main/binary-amd64/Packages.gz", "dists/stable/main/binary-amd64/Packages.xz"} {
		if !bytes.Equal(m.file(rec, p), up.ReadFile(t, p)) {
			t.Errorf("%s is not byte-identical to the upstream's", p)
		}
	}
	if n := up.Requests("/dists/stable/main/binary-amd64/by-hash/SHA256/"); n != 3 {
		t.Errorf("%d by-hash requests, want 3 (one per form)", n)
	}
	c := apttest.NewClient(t, "", "v.list", "deb [signed-by="+up.Key.Keyring+"] "+m.serve(rec)+" stable main\n")
	c.Update("-o", "Acquire::By-Hash=force")
	checkDownloaded(t, up, c.Download("demo-base"), "demo-base")
}

// Two suites share the pool; two architectures, an arch-all package
// listed in both; Multi-Arch: foreign resolves across architectures in a
// filtered closure; apt with By-Hash=force installs from the result.
func TestSuitesArchitecturesAndByHash(t *testing.T) {
	up := apttest.New(t, apttest.Options{Suites: []string{"stable", "updates"}, Architectures: []string{"amd64", "i386"}, Debs: debCache})
	up.Add(t,
		apttest.Package{Name: "tool", Version: "1.0-1", Arch: "i386", Depends: "helper, common"},
		apttest.Package{Name: "tool", Version: "1.0-1", Arch: "amd64", Depends: "helper, common"},
		apttest.Package{Name: "helper", Version: "1.0-1", Arch: "amd64", MultiArch: "foreign"},
		apttest.Package{Name: "common", Version: "1.0-1", Arch: "all"},
		apttest.Package{Name: "tool", Version: "1.1-1", Arch: "amd64", Suite: "updates", Depends: "helper (>= 1.0), common"},
	)
	up.Publish(t)
	m := newMirror(t)
	rec := m.mustSync(newSource(t, aptConfig(up, func(c *config.AptSource) {
		c.Filter, c.FilterWithDeps = []string{"tool"}, true
	})))
	want := map[string][]string{
		"stable/main/binary-amd64":  {"common 1.0-1", "helper 1.0-1", "tool 1.0-1"},
		"stable/main/binary-i386":   {"common 1.0-1", "tool 1.0-1"}, // helper is amd64 only, but foreign
		"updates/main/binary-amd64": {"tool 1.1-1"},                 // deps come from stable
		"updates/main/binary-i386":  nil,
	}
	for dir, w := range want {
		if got := packagesIn(t, m.file(rec, "dists/"+dir+"/Packages")); !slices.Equal(got, w) {
			t.Errorf("%s: %v, want %v", dir, got, w)
		}
	}
	c := m.client(m.serve(rec), "stable", "updates")
	c.Update("-o", "Acquire::By-Hash=force")
	checkDownloaded(t, up, c.Download("tool"), "tool", "helper", "common")
	if v := c.Candidate("tool"); v != "1.1-1" {
		t.Errorf("candidate %q", v)
	}
}

func TestSourcesAndTranslations(t *testing.T) {
	up := apttest.New(t, apttest.Options{Debs: debCache})
	up.Add(t, apttest.Package{Name: "hello", Version: "2.10-3"}, apttest.Package{Name: "other", Version: "1.0-1"})
	up.AddSource(t, "hello", "2.10-3", []byte("not really a tarball\n"))
	up.Publish(t)
	up.WriteIndex(t, "dists/stable/main/i18n/Translation-en", []byte("Package: hello\nDescription-md5: 0123\nDescription-en: hi\n greeting\n\n"))
	up.Release(t, "stable")
	m := newMirror(t)
	rec := m.mustSync(newSource(t, aptConfig(up, func(c *config.AptSource) {
		c.Sources, c.Translations = true, []string{"en", "de"}
	})))
	tree := m.tree(rec)
	for _, p := range []string{
		"dists/stable/main/source/Sources.xz", "dists/stable/main/source/Sources.gz",
		"dists/stable/main/i18n/Translation-en", // the smallest form the upstream has: plain, for so short a file
		"pool/main/h/hello/hello_2.10-3.dsc", "pool/main/h/hello/hello_2.10-3.tar.xz",
	} {
		if _, ok := tree.Lookup(p); !ok {
			t.Errorf("tree lacks %s", p)
		}
	}
	c := apttest.NewClient(t, "", "s.list", "deb-src [signed-by="+m.publicKey()+"] "+m.serve(rec)+" stable main\n")
	c.Update()
	if out := c.Must("apt-cache", "showsrc", "hello"); !strings.Contains(out, "Version: 2.10-3") {
		t.Errorf("showsrc: %s", out)
	}
	// A filter keeps the sources of the binaries it keeps, and no others.
	for filter, want := range map[string]bool{"hello": true, "other": false} {
		m := newMirror(t)
		rec := m.mustSync(newSource(t, aptConfig(up, func(c *config.AptSource) { c.Sources, c.Filter = true, []string{filter} })))
		if _, ok := m.tree(rec).Lookup("pool/main/h/hello/hello_2.10-3.dsc"); ok != want {
			t.Errorf("filter %s: source package in the pool: %v, want %v", filter, ok, want)
		}
		if got := bytes.Contains(m.file(rec, "dists/stable/main/source/Sources"), []byte("Package: hello\n")); got != want {
			t.Errorf("filter %s: hello in Sources: %v, want %v", filter, got, want)
		}
	}
}

// A new upstream version makes a new snapshot whose items show the
// upgrade; the old snapshot's tree still serves the old version.
func TestUpgradeKeepsOldSnapshot(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	m := newMirror(t)
	src := newSource(t, aptConfig(up, nil))
	rec1 := m.mustSync(src)
	up.Add(t, apttest.Package{Name: "demo-app", Version: "1.1-1", Depends: "demo-lib"})
	up.Remove("demo-app", "1.0-1")
	up.Publish(t)
	up.ResetRequests()
	rec2 := m.mustSync(src)
	if n := up.Requests("/pool/"); n != 1 {
		t.Errorf("%d pool requests, want 1 (only the new package)", n)
	}
	a, _ := m.cat.Items(t.Context(), &rec1.Sources[0])
	b, _ := m.cat.Items(t.Context(), &rec2.Sources[0])
	_, _, changed := snapshot.DiffItems(a, b)
	if want := []snapshot.ItemChange{{Name: "demo-app:amd64", From: "1.0-1", To: "1.1-1"}}; !slices.Equal(changed, want) {
		t.Errorf("diff %v, want %v", changed, want)
	}
	old := m.client(m.serve(rec1), "stable")
	old.Update()
	if v := old.Candidate("demo-app"); v != "1.0-1" {
		t.Errorf("old snapshot offers demo-app %q", v)
	}
}

func TestClientConfig(t *testing.T) {
	s, err := New(config.AptSource{Name: "debian", URL: "http://up.invalid/debian", Suites: []string{"bookworm", "bookworm-updates"},
		Components: []string{"main", "contrib"}, Architectures: []string{"amd64"}, Keyring: "/k.gpg", Sources: true}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := s.ClientConfig("http://m:8080/channels/production/apt/debian", "http://m:8080/keys/mirrord.asc")
	for _, want := range []string{
		"Types: deb deb-src\n", "URIs: http://m:8080/channels/production/apt/debian/\n", "Suites: bookworm bookworm-updates\n",
		"Components: main contrib\n", "Signed-By: /etc/apt/keyrings/mirrord.asc\n", "curl -fsSL http://m:8080/keys/mirrord.asc -o /etc/apt/keyrings/mirrord.asc",
		"/etc/apt/sources.list.d/mirrord-debian.sources",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("client config lacks %q:\n%s", want, got)
		}
	}
}

// Every compression mirrord reads works as the only one an upstream
// offers; the published index always comes in .xz and .gz (and plain when
// the upstream listed it), each decompressing to the upstream's text.
func TestUpstreamCompressions(t *testing.T) {
	for _, suf := range []string{".gz", ".xz", ".bz2", ".zst", ""} {
		t.Run("only"+describe(suf), func(t *testing.T) {
			up := apttest.New(t, apttest.Options{Compressions: []string{suf}, Debs: debCache})
			up.Add(t, apttest.Demo()[:3]...)
			up.Publish(t)
			plain, err := readAllDecompressed(up.ReadFile(t, "dists/stable/main/binary-amd64/Packages"+suf), suf)
			if err != nil {
				t.Fatal(err)
			}
			m := newMirror(t)
			rec := m.mustSync(newSource(t, aptConfig(up, nil)))
			want := []string{".xz", ".gz"}
			if suf == "" {
				want = append(want, "")
			}
			for _, w := range want {
				got, err := readAllDecompressed(m.file(rec, "dists/stable/main/binary-amd64/Packages"+w), w)
				if err != nil || !bytes.Equal(got, plain) {
					t.Errorf("published Packages%s: %v, equal to upstream: %v", w, err, bytes.Equal(got, plain))
				}
			}
			if _, ok := m.tree(rec).Lookup("dists/stable/main/binary-amd64/Packages" + suf); !ok {
				t.Errorf("the upstream's own form is not served")
			}
		})
	}
}
