package apt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// debCache shares built .debs between the tests of this package.
var debCache = apttest.NewDebCache()

func demoRepo(t *testing.T, opt apttest.Options) *apttest.Repo {
	opt.Debs = debCache
	r := apttest.New(t, opt)
	r.Add(t, apttest.Demo()...)
	r.Publish(t)
	return r
}

func newSource(t *testing.T, c config.AptSource) *Source {
	t.Helper()
	s, err := New(c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// The core path: a verified upstream becomes a re-signed snapshot that
// stock apt-get accepts with mirrord's key alone, and installs from.
func TestSyncPublishesInstallableRepo(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	m := newMirror(t)
	rec := m.mustSync(newSource(t, aptConfig(up, nil)))
	tree := m.tree(rec)

	for _, p := range []string{
		"dists/stable/InRelease", "dists/stable/Release", "dists/stable/Release.gpg",
		"dists/stable/main/binary-amd64/Packages", "dists/stable/main/binary-amd64/Packages.gz", "dists/stable/main/binary-amd64/Packages.xz",
		up.Deb(t, "demo-app", "", "").Filename,
	} {
		if _, ok := tree.Lookup(p); !ok {
			t.Errorf("tree lacks %s", p)
		}
	}
	for _, e := range tree.Entries {
		if strings.HasPrefix(e.Path, "dists/stable/main/binary-amd64/Packages") {
			if hashed, ok := tree.Lookup("dists/stable/main/binary-amd64/by-hash/SHA256/" + string(e.Digest)); !ok || hashed.Digest != e.Digest {
				t.Errorf("no by-hash entry for %s", e.Path)
			}
		}
	}
	// The plain index is the upstream's, byte for byte; .xz and .gz too
	// (the upstream has them).
	for _, suf := range []string{"", ".gz", ".xz"} {
		p := "dists/stable/main/binary-amd64/Packages" + suf
		if got := m.file(rec, p); !bytes.Equal(got, up.ReadFile(t, p)) {
			t.Errorf("%s differs from upstream", p)
		}
	}
	checkRelease(t, m, rec, up)

	c := m.client(m.serve(rec), "stable")
	c.Update()
	got := c.Download("demo-app")
	checkDownloaded(t, up, got, "demo-app", "demo-base", "demo-lib", "demo-data", "demo-alt-b", "demo-mta", "demo-py", "demo-vprov")
	if v := c.Candidate("demo-lib"); v != "1.2~rc1-1" {
		t.Errorf("candidate demo-lib %q", v)
	}

	// Items are one per binary package, arch-all without an arch suffix.
	items, err := m.cat.Items(t.Context(), &rec.Sources[0])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(items, snapshot.Item{Name: "demo-app:amd64", Version: "1.0-1"}) || !slices.Contains(items, snapshot.Item{Name: "demo-data", Version: "1.0-1"}) {
		t.Errorf("items: %v", items)
	}
}

// checkRelease checks the published Release and its signatures.
func checkRelease(t *testing.T, m *mirror, rec *snapshot.Record, up *apttest.Repo) {
	t.Helper()
	rel := m.file(rec, "dists/stable/Release")
	upRel := up.ReadFile(t, "dists/stable/Release")
	field := func(data []byte, name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `: (.*)$`).FindSubmatch(data)
		if m == nil {
			return ""
		}
		return string(m[1])
	}
	for _, f := range []string{"Origin", "Label", "Suite", "Codename", "Version", "Date", "Description"} {
		if field(rel, f) != field(upRel, f) || field(rel, f) == "" {
			t.Errorf("Release %s = %q, upstream %q", f, field(rel, f), field(upRel, f))
		}
	}
	if field(rel, "Acquire-By-Hash") != "yes" || field(rel, "Valid-Until") != "" || bytes.Contains(rel, []byte("MD5Sum")) {
		t.Errorf("Release:\n%s", rel)
	}
	if want := m.public + "/snapshots/@SNAPSHOTID@/apt/fixture/"; field(rel, "Snapshots") != want {
		t.Errorf("Snapshots = %q, want %q", field(rel, "Snapshots"), want)
	}
	// Every listed file is in the tree with that hash and size, and every
	// index in the tree is listed.
	parsed, err := parseRelease(rel)
	if err != nil {
		t.Fatal(err)
	}
	tree := m.tree(rec)
	for p, sum := range parsed.files {
		e, ok := tree.Lookup("dists/stable/" + p)
		if !ok || e.Digest != sum.SHA256 || e.Size != sum.Size {
			t.Errorf("Release lists %s %v, tree has %v", p, sum, e)
		}
	}
	for _, e := range tree.Entries {
		p := strings.TrimPrefix(e.Path, "dists/stable/")
		if p != e.Path && !strings.Contains(p, "by-hash/") && !strings.Contains(p, "Release") {
			if _, ok := parsed.files[p]; !ok {
				t.Errorf("served %s is not listed in the Release", e.Path)
			}
		}
	}
	kr := openpgp.EntityList{m.key.Entity()}
	text, _, err := signing.VerifyClearSigned(kr, m.file(rec, "dists/stable/InRelease"))
	if err != nil || !bytes.Equal(text, rel) {
		t.Errorf("InRelease does not sign the Release: %v", err)
	}
	if _, err := signing.VerifyDetached(kr, rel, m.file(rec, "dists/stable/Release.gpg")); err != nil {
		t.Errorf("Release.gpg: %v", err)
	}
}

// checkDownloaded checks that exactly the named packages arrived, each
// byte-identical to the upstream's.
func checkDownloaded(t *testing.T, up *apttest.Repo, got map[string][]byte, names ...string) {
	t.Helper()
	var gotNames []string
	for file, data := range got {
		name := strings.Split(file, "_")[0]
		gotNames = append(gotNames, name)
		found := false
		for _, d := range up.Debs() {
			if d.Name == name && d.SHA256 == sha(data) {
				found = true
			}
		}
		if !found {
			t.Errorf("downloaded %s does not match any upstream package", file)
		}
	}
	slices.Sort(gotNames)
	slices.Sort(names)
	if !slices.Equal(gotNames, names) {
		t.Errorf("downloaded %v, want %v", gotNames, names)
	}
}

// An unchanged upstream costs one InRelease request and yields the
// byte-identical tree (InRelease included: signatures are reused).
func TestUnchangedUpstreamReusesTree(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	m := newMirror(t)
	src := newSource(t, aptConfig(up, nil))
	rec1 := m.mustSync(src)
	up.ResetRequests()
	rec2 := m.mustSync(src)
	if rec1.Sources[0].Tree != rec2.Sources[0].Tree || rec1.Sources[0].Items != rec2.Sources[0].Items {
		t.Errorf("tree changed on an unchanged upstream")
	}
	if n := up.Requests("/"); n != 1 {
		t.Errorf("unchanged upstream cost %d requests, want 1", n)
	}
	// Re-signed upstream with the same content: indices are re-read, the
	// published Release is the same, so are its signatures.
	up.Release(t, "stable")
	up.ResetRequests()
	rec3 := m.mustSync(src)
	if rec3.Sources[0].Tree != rec1.Sources[0].Tree {
		t.Errorf("tree changed when only the upstream signature changed")
	}
	if n := up.Requests("/pool/"); n != 0 {
		t.Errorf("pool files fetched again: %d requests", n)
	}
}
