package apt

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// retain: {versions: 2} keeps the version the upstream dropped in the
// next snapshot (installable, its .deb never fetched again), drops it
// once two newer ones exist, and snapshot diff shows both steps.
func TestRetainVersions(t *testing.T) {
	up := apttest.New(t, apttest.Options{Debs: debCache})
	up.Add(t, apttest.Package{Name: "app", Version: "1.0-1"}, apttest.Package{Name: "other", Version: "1"})
	up.Publish(t)
	m := newMirror(t)
	cfg := aptConfig(up, func(c *config.AptSource) { c.Retain = &config.Retain{Versions: 2} })
	rec1 := m.mustSync(newSource(t, cfg))

	old := up.Deb(t, "app", "1.0-1", "")
	up.Remove("app", "1.0-1")
	up.Add(t, apttest.Package{Name: "app", Version: "1.1-1"})
	up.Publish(t)
	up.ResetRequests()
	rec2 := m.mustSync(newSource(t, cfg))
	if got, want := packagesIn(t, m.file(rec2, "dists/stable/main/binary-amd64/Packages")), []string{"app 1.0-1", "app 1.1-1", "other 1"}; !slices.Equal(got, want) {
		t.Errorf("second snapshot publishes %v, want %v", got, want)
	}
	if n := up.Requests("/pool/main/a/app/app_1.0-1"); n != 0 {
		t.Errorf("the retained .deb was fetched again (%d requests)", n)
	}
	c := m.client(m.serve(rec2), "stable")
	c.Update()
	got := c.Download("app=1.0-1")
	if data := got["app_1.0-1_amd64.deb"]; len(got) != 1 || sha(data) != old.SHA256 {
		t.Errorf("apt-get install app=1.0-1 downloaded %d files, not the original .deb", len(got))
	}
	if d := diffOf(t, m, rec1, rec2); d != "+app:amd64 1.1-1" {
		t.Errorf("diff 1→2: %s", d)
	}

	up.Remove("app", "1.1-1")
	up.Add(t, apttest.Package{Name: "app", Version: "1.2-1"})
	up.Publish(t)
	rec3 := m.mustSync(newSource(t, cfg))
	if got, want := packagesIn(t, m.file(rec3, "dists/stable/main/binary-amd64/Packages")), []string{"app 1.1-1", "app 1.2-1", "other 1"}; !slices.Equal(got, want) {
		t.Errorf("third snapshot publishes %v, want %v", got, want)
	}
	if _, ok := m.tree(rec3).Lookup("pool/main/a/app/app_1.0-1_amd64.deb"); ok {
		t.Error("the third snapshot still holds app 1.0-1")
	}
	if d := diffOf(t, m, rec2, rec3); d != "+app:amd64 1.2-1 -app:amd64 1.0-1" {
		t.Errorf("diff 2→3: %s", d)
	}
}

func diffOf(t *testing.T, m *mirror, a, b *snapshot.Record) string {
	t.Helper()
	ds, err := m.cat.Diff(context.Background(), a, b)
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
