package yum

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/yum/yumtest"
)

// retain: a version the upstream dropped stays in the next snapshot
// (metadata entries copied from the previous snapshot, rpm not fetched
// again) until N newer ones exist; the diff shows both steps.
func TestRetainVersions(t *testing.T) {
	f := yumtest.NewFixture(t, []yumtest.Package{{Name: "app", Version: "1.0"}, {Name: "lib", Version: "1.0"}, {Name: "lib", Version: "0.9"}})
	dir := t.TempDir()
	yumtest.MakeRepo(t, dir, f.All(), f.Signer, yumtest.RepoOptions{})
	srv := yumtest.Serve(t, dir)
	h := newHarness(t)
	src := func() *Source { return newSource(t, srv, f, func(o *Options) { o.Verbatim, o.Retain = false, 2 }) }
	rec1 := h.mustSync(src())
	if got := rpmsIn(h, rec1); got != "app-1.0-1 lib-0.9-1 lib-1.0-1" {
		t.Errorf("first snapshot: %s", got)
	}

	// The upstream moves app to 1.1 and 1.2 in two steps, dropping the old.
	next := func(ver string) *snapshot.Record {
		rpms := yumtest.Build(t, t.TempDir(), []yumtest.Package{{Name: "app", Version: ver}})
		f.Signer.SignRPMs(t, rpms...)
		removeOthers(t, dir, "app-"+ver)
		yumtest.MakeRepo(t, dir, append(rpms, f.RPMs["lib-1.0"], f.RPMs["lib-0.9"]), f.Signer, yumtest.RepoOptions{})
		return h.mustSync(src())
	}
	rec2 := next("1.1")
	if got := rpmsIn(h, rec2); got != "app-1.0-1 app-1.1-1 lib-0.9-1 lib-1.0-1" {
		t.Errorf("second snapshot: %s", got)
	}
	if n := srv.Hits()["/Packages/app-1.0-1.noarch.rpm"]; n != 1 {
		t.Errorf("app-1.0-1.noarch.rpm requested %d times, want once (by the first sync)", n)
	}
	md, err := parseRepomd(h.file(rec2, "fixture", "repodata/repomd.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"primary", "filelists", "other"} {
		doc := string(h.openData(rec2, md, typ))
		if !strings.Contains(doc, `packages="4"`) || strings.Count(doc, "<package ") != 4 || !strings.Contains(doc, `ver="1.0"`) {
			t.Errorf("%s does not list the 4 packages with app 1.0:\n%s", typ, doc)
		}
	}
	if d := yumDiff(t, h, rec1, rec2); d != "+app.noarch 1.1-1" {
		t.Errorf("diff 1→2: %s", d)
	}
	rec3 := next("1.2")
	if got := rpmsIn(h, rec3); got != "app-1.1-1 app-1.2-1 lib-0.9-1 lib-1.0-1" {
		t.Errorf("third snapshot: %s", got)
	}
	if d := yumDiff(t, h, rec2, rec3); d != "+app.noarch 1.2-1 -app.noarch 1.0-1" {
		t.Errorf("diff 2→3: %s", d)
	}
}

func rpmsIn(h *harness, rec *snapshot.Record) string {
	var out []string
	for _, e := range h.tree(rec, "fixture").Entries {
		if n, ok := strings.CutPrefix(e.Path, "Packages/"); ok {
			out = append(out, strings.TrimSuffix(n, ".noarch.rpm"))
		}
	}
	return strings.Join(out, " ")
}

// removeOthers deletes the app rpms of dir/Packages other than keep (the
// upstream dropped them; MakeRepo copied only what it was given).
func removeOthers(t *testing.T, dir, keep string) {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "Packages", "app-*.rpm"))
	for _, p := range files {
		if !strings.HasPrefix(filepath.Base(p), keep+"-") {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func yumDiff(t *testing.T, h *harness, a, b *snapshot.Record) string {
	t.Helper()
	ds, err := h.cat.Diff(context.Background(), a, b)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range ds {
		for _, it := range d.Added {
			out = append(out, "+"+it.Name+" "+it.Version)
		}
		for _, it := range d.Removed {
			out = append(out, "-"+it.Name+" "+it.Version)
		}
		for _, c := range d.Changed {
			out = append(out, "~"+c.Name+" "+c.From+" -> "+c.To)
		}
	}
	return strings.Join(out, " ")
}
