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

// packagesIn lists "NAME VERSION" of a Packages index.
func packagesIn(t *testing.T, data []byte) []string {
	t.Helper()
	p := newParagraphs(bytes.NewReader(data))
	var out []string
	for {
		ok, err := p.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		name, _ := p.get("Package")
		ver, _ := p.get("Version")
		out = append(out, string(name)+" "+string(ver))
	}
	slices.Sort(out)
	return out
}

func poolFiles(tree *snapshot.Tree) []string {
	var out []string
	for _, e := range tree.Entries {
		if strings.HasPrefix(e.Path, "pool/") {
			out = append(out, e.Path)
		}
	}
	return out
}

// filter: [demo-app] with filter_with_deps holds exactly the dependency
// closure, in every form of the index and in the pool, and installs.
func TestFilterWithDepsClosure(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	m := newMirror(t)
	rec := m.mustSync(newSource(t, aptConfig(up, func(c *config.AptSource) {
		c.Filter, c.FilterWithDeps = []string{"demo-app"}, true
	})))
	want := apttest.DemoClosure()
	for _, suf := range []string{"", ".gz", ".xz"} {
		data := m.file(rec, "dists/stable/main/binary-amd64/Packages"+suf)
		plain, err := readAllDecompressed(data, suf)
		if err != nil {
			t.Fatal(err)
		}
		if got := packagesIn(t, plain); !slices.Equal(got, want) {
			t.Errorf("Packages%s holds %v\nwant %v", suf, got, want)
		}
	}
	var wantPool []string
	for _, nv := range want {
		name, ver, _ := strings.Cut(nv, " ")
		wantPool = append(wantPool, up.Deb(t, name, ver, "").Filename)
	}
	slices.Sort(wantPool)
	if got := poolFiles(m.tree(rec)); !slices.Equal(got, wantPool) {
		t.Errorf("pool holds %v\nwant %v", got, wantPool)
	}
	checkRelease(t, m, rec, up)
	c := m.client(m.serve(rec), "stable")
	c.Update()
	checkDownloaded(t, up, c.Download("demo-app"), "demo-app", "demo-base", "demo-lib", "demo-data", "demo-alt-b", "demo-mta", "demo-py", "demo-vprov")
	if n := rec.Sources[0].NItems; n != len(want) {
		t.Errorf("%d items, want %d", n, len(want))
	}
}

func TestFilterVariants(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	tests := []struct {
		name string
		mod  func(*config.AptSource)
		want []string
	}{
		{"no deps", func(c *config.AptSource) { c.Filter = []string{"demo-app"} }, []string{"demo-app 1.0-1"}},
		{"glob", func(c *config.AptSource) { c.Filter = []string{"other-*"} }, []string{"other-lib 1.0-1", "other-tool 1.0-1"}},
		{"recommends", func(c *config.AptSource) {
			c.Filter, c.FilterWithDeps, c.FilterRecommends = []string{"demo-app"}, true, true
		}, append(apttest.DemoClosure(), "demo-extra 1.0-1")},
		{"newest only", func(c *config.AptSource) { c.Filter = []string{"demo-lib"} }, []string{"demo-lib 1.2~rc1-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMirror(t)
			rec := m.mustSync(newSource(t, aptConfig(up, tt.mod)))
			slices.Sort(tt.want)
			if got := packagesIn(t, m.file(rec, "dists/stable/main/binary-amd64/Packages")); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}
