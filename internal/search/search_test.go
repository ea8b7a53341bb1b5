package search_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/search"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store/fs"
)

type fixture struct {
	t   *testing.T
	cat *snapshot.Catalog
	now time.Time
}

func newFixture(t *testing.T) *fixture {
	st, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, cat: snapshot.New(st), now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	f.cat.SetClock(func() time.Time { return f.now })
	return f
}

// commit writes a snapshot whose sources have the given "name=version" items.
func (f *fixture) commit(srcs map[string][]string) string {
	f.t.Helper()
	ctx := context.Background()
	blobs := f.cat.Store().Blobs()
	tree, _ := snapshot.NewTree(nil)
	td, err := snapshot.PutTree(ctx, blobs, tree)
	if err != nil {
		f.t.Fatal(err)
	}
	var recs []snapshot.SourceRecord
	for key, pkgs := range srcs {
		var items []snapshot.Item
		for _, p := range pkgs {
			n, v, _ := strings.Cut(p, "=")
			items = append(items, snapshot.Item{Name: n, Version: v})
		}
		d, err := snapshot.PutItems(ctx, blobs, items)
		if err != nil {
			f.t.Fatal(err)
		}
		kind, name, _ := strings.Cut(key, "/")
		recs = append(recs, snapshot.SourceRecord{Kind: kind, Name: name, Tree: td, Items: d, NItems: len(items)})
	}
	f.now = f.now.Add(time.Hour)
	rec, err := f.cat.Commit(ctx, recs)
	if err != nil {
		f.t.Fatal(err)
	}
	return rec.ID
}

// where answers a query the way the server does: postings → item lists →
// the snapshots whose records name them, as "ID source version".
func (f *fixture) where(name, version string) []string {
	f.t.Helper()
	ctx := context.Background()
	ix, err := search.Load(ctx, f.cat.Store().Meta())
	if err != nil {
		f.t.Fatal(err)
	}
	recs, _ := f.cat.List(ctx)
	var out []string
	for _, p := range ix.Lookup(name, version) {
		for _, rec := range recs {
			src, ok := rec.Source(p.Source)
			if ok && slices.Contains(p.Lists, src.Items) {
				out = append(out, fmt.Sprintf("%s %s %s", rec.ID, p.Source, p.Version))
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestIndexFollowsSnapshots(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s1 := f.commit(map[string][]string{
		"apt/debian": {"openssl=3.0.14", "curl=7.88", "libc:amd64=2.36", "libc6:amd64=2.36"},
		"yum/base":   {"openssl=3.0.7", "libc.x86_64=2.34", "python3.x86_64=3.9", "python3.11.x86_64=3.11"},
	})
	s2 := f.commit(map[string][]string{"apt/debian": {"openssl=3.0.15", "curl=7.88"}, "yum/base": {"openssl=3.0.7"}})
	// Indexing catches up over every snapshot not yet indexed.
	if n, err := search.Update(ctx, f.cat); err != nil || n != 2 {
		t.Fatalf("Update = %d, %v; want 2 snapshots", n, err)
	}
	s3 := f.commit(map[string][]string{"apt/debian": {"openssl=3.0.14", "curl=7.88", "curl=8.0"}})
	if n, err := search.Update(ctx, f.cat); err != nil || n != 1 {
		t.Fatalf("Update = %d, %v; want 1", n, err)
	}
	if n, err := search.Update(ctx, f.cat); err != nil || n != 0 {
		t.Fatalf("second Update = %d, %v; want nothing to do", n, err)
	}
	for _, tc := range []struct {
		name, version string
		want          []string
	}{
		{"openssl", "", []string{s1 + " apt/debian 3.0.14", s1 + " yum/base 3.0.7", s2 + " apt/debian 3.0.15", s2 + " yum/base 3.0.7", s3 + " apt/debian 3.0.14"}},
		{"openssl", "3.0.15", []string{s2 + " apt/debian 3.0.15"}},
		{"curl", "7.88", []string{s1 + " apt/debian 7.88", s2 + " apt/debian 7.88", s3 + " apt/debian 7.88"}},
		{"curl", "8.0", []string{s3 + " apt/debian 8.0"}},
		{"nope", "", nil},
		{"libc", "", []string{s1 + " apt/debian 2.36", s1 + " yum/base 2.34"}},
		{"python3", "", []string{s1 + " yum/base 3.9"}},
	} {
		if got := f.where(tc.name, tc.version); !slices.Equal(got, tc.want) {
			t.Errorf("%s %s:\n got %q\nwant %q", tc.name, tc.version, got, tc.want)
		}
	}
	ix, _ := search.Load(ctx, f.cat.Store().Meta())
	if ix.Last() != s3 {
		t.Errorf("Last = %s, want %s", ix.Last(), s3)
	}
	if got := ix.Suggest("c", 5); !slices.Equal(got, []string{"curl"}) {
		t.Errorf("Suggest(c) = %v", got)
	}
}

// A corrupt index is reported with the key to delete, not silently empty.
func TestCorruptIndex(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.commit(map[string][]string{"apt/debian": {"a=1"}})
	if _, err := search.Update(ctx, f.cat); err != nil {
		t.Fatal(err)
	}
	f.cat.Store().Meta().Put(ctx, "search/apt/debian", []byte("mirrord-search-index 1\ngen sha\na\t1\t5-\n"))
	_, err := search.Load(ctx, f.cat.Store().Meta())
	if err == nil || !strings.Contains(err.Error(), "search/apt/debian") || !strings.Contains(err.Error(), "malformed span") {
		t.Errorf("Load of a corrupt index: %v", err)
	}
}

// The index grows with churn, not with snapshots × packages.
func TestIndexSizeFollowsChurn(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	base := make([]string, 2000)
	for i := range base {
		base[i] = fmt.Sprintf("pkg%04d=1.0", i)
	}
	for gen := 0; gen < 30; gen++ {
		pkgs := append(slices.Clone(base), fmt.Sprintf("churn=%d", gen))
		f.commit(map[string][]string{"apt/debian": pkgs})
	}
	if _, err := search.Update(ctx, f.cat); err != nil {
		t.Fatal(err)
	}
	b, err := f.cat.Store().Meta().Get(ctx, "search/apt/debian")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(string(b), "\n")
	if want := 1 + 30 + 2000 + 30; lines != want {
		t.Errorf("index has %d lines, want %d (header, gens, one per package version)", lines, want)
	}
}

// BenchmarkUpdate65k is the cost a sync adds: indexing one new snapshot of
// a 65,000-package source whose list changed (100 upgrades).
func BenchmarkUpdate65k(b *testing.B) {
	ctx := context.Background()
	st, err := fs.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	cat := snapshot.New(st)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cat.SetClock(func() time.Time { return now })
	tree, _ := snapshot.NewTree(nil)
	td, _ := snapshot.PutTree(ctx, st.Blobs(), tree)
	items := make([]snapshot.Item, 65000)
	for i := range items {
		items[i] = snapshot.Item{Name: fmt.Sprintf("pkg%05d:amd64", i), Version: "1.0-1"}
	}
	commit := func(gen int) {
		for i := 0; i < 100; i++ {
			items[(gen*100+i)%len(items)].Version = fmt.Sprintf("1.%d-1", gen)
		}
		d, err := snapshot.PutItems(ctx, st.Blobs(), items)
		if err != nil {
			b.Fatal(err)
		}
		now = now.Add(time.Hour)
		if _, err := cat.Commit(ctx, []snapshot.SourceRecord{{Kind: "apt", Name: "big", Tree: td, Items: d, NItems: len(items)}}); err != nil {
			b.Fatal(err)
		}
	}
	commit(0)
	if _, err := search.Update(ctx, cat); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for n := 1; n <= b.N; n++ {
		b.StopTimer()
		commit(n)
		b.StartTimer()
		if _, err := search.Update(ctx, cat); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	data, _ := st.Meta().Get(ctx, "search/apt/big")
	b.ReportMetric(float64(len(data)), "index-bytes")
}
