package yum

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/yum/yumtest"
)

func TestVerbatimEveryVariant(t *testing.T) {
	f := yumtest.NewFixture(t, nil)
	variants := map[string]yumtest.RepoOptions{
		"gz":       {},
		"xz":       {Compression: "xz"},
		"zstd":     {Compression: "zstd"},
		"bz2":      {Compression: "bz2", Database: true},
		"sha1":     {Checksum: "sha1"},
		"sha512":   {Checksum: "sha512", Compression: "xz"},
		"zchunk":   {Zchunk: true},
		"advisory": {UpdateInfo: updateInfoXML, Comps: compsXML},
	}
	for name, opt := range variants {
		t.Run(name, func(t *testing.T) {
			dir := f.Repo(t, opt)
			srv := yumtest.Serve(t, dir)
			h := newHarness(t)
			src := newSource(t, srv, f, nil)
			rec := h.mustSync(src)
			checkVerbatim(t, h, rec, dir)

			// Unchanged upstream: one repomd.xml request, the same tree.
			srv.Hits()
			rec2 := h.mustSync(src)
			if hits := srv.Hits(); len(hits) != 1 || hits["/repodata/repomd.xml"] != 1 {
				t.Errorf("re-sync of an unchanged upstream made requests %v, want only repodata/repomd.xml", hits)
			}
			s1, _ := rec.Source("yum/fixture")
			s2, _ := rec2.Source("yum/fixture")
			if s1.Tree != s2.Tree || s1.Items != s2.Items {
				t.Errorf("unchanged upstream gave a new tree or items: %s/%s vs %s/%s", s1.Tree, s1.Items, s2.Tree, s2.Items)
			}
		})
	}
}

// checkVerbatim compares the snapshot's tree with the upstream directory:
// every upstream file is there, byte for byte, and nothing else but the key.
func checkVerbatim(t *testing.T, h *harness, rec *snapshotRecord, dir string) {
	t.Helper()
	tree := h.tree(rec, "fixture")
	want := map[string]bool{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			want[filepath.ToSlash(rel)] = true
		}
		return nil
	})
	for rel := range want {
		got := h.file(rec, "fixture", rel)
		if !bytes.Equal(got, readFile(t, filepath.Join(dir, rel))) {
			t.Errorf("%s differs from upstream", rel)
		}
	}
	for _, e := range tree.Entries {
		if !want[e.Path] && e.Path != KeyPath {
			t.Errorf("tree has %s, which upstream does not", e.Path)
		}
	}
	if key := h.file(rec, "fixture", KeyPath); !strings.Contains(string(key), "BEGIN PGP PUBLIC KEY BLOCK") {
		t.Errorf("%s is not an armored key:\n%s", KeyPath, key)
	}
	items, err := h.cat.Items(t.Context(), mustSource(t, rec, "yum/fixture"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, it := range items {
		got[it.Name+" "+it.Version] = true
	}
	for _, w := range []string{"foo.noarch 2:1.0-1", "bar.noarch 1.2-1", "bar.noarch 0.9-1", "lonely.noarch 0.1-1"} {
		if !got[w] {
			t.Errorf("items lack %q: %v", w, items)
		}
	}
}
