package snapshot_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/fs"
)

func newCatalog(t *testing.T) *snapshot.Catalog {
	t.Helper()
	st, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return snapshot.New(st)
}

// source stores files and returns a source record for them.
func source(t *testing.T, c *snapshot.Catalog, name string, files map[string]string) snapshot.SourceRecord {
	t.Helper()
	ctx := context.Background()
	var es []snapshot.Entry
	for p, body := range files {
		in, err := c.Store().Blobs().Put(ctx, strings.NewReader(body), store.Expect{})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, snapshot.Entry{Path: p, Digest: in.Digest, Size: in.Size})
	}
	tree, err := snapshot.NewTree(es)
	if err != nil {
		t.Fatal(err)
	}
	d, err := snapshot.PutTree(ctx, c.Store().Blobs(), tree)
	if err != nil {
		t.Fatal(err)
	}
	return snapshot.SourceRecord{Kind: "file", Name: name, Tree: d, Files: len(es), Size: tree.Size()}
}

func TestIDs(t *testing.T) {
	for _, tc := range []struct {
		id string
		ok bool
	}{
		{"20261123T101500Z", true},
		{"20261123T101500", false},
		{"2026-11-23T10:15:00Z", false},
		{"20261323T101500Z", false},
		{"../../etc", false},
		{"", false},
	} {
		if _, err := snapshot.ParseID(tc.id); (err == nil) != tc.ok {
			t.Errorf("ParseID(%q) error %v, want ok=%v", tc.id, err, tc.ok)
		}
	}
}

func TestCommitUniqueIDsInOneSecond(t *testing.T) {
	c := newCatalog(t)
	fixed := time.Date(2026, 11, 23, 10, 15, 0, 0, time.UTC)
	c.SetClock(func() time.Time { return fixed })
	src := source(t, c, "a", map[string]string{"x": "1"})
	var ids []string
	for range 5 {
		r, err := c.Commit(context.Background(), []snapshot.SourceRecord{src})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	want := []string{"20261123T101500Z", "20261123T101501Z", "20261123T101502Z", "20261123T101503Z", "20261123T101504Z"}
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Errorf("ids %v, want %v", ids, want)
	}
}

func TestCommitRefusesMissingBlobs(t *testing.T) {
	c := newCatalog(t)
	ctx := context.Background()
	tree, _ := snapshot.NewTree([]snapshot.Entry{{Path: "x", Digest: store.DigestOf([]byte("absent")), Size: 6}})
	d, err := snapshot.PutTree(ctx, c.Store().Blobs(), tree)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Commit(ctx, []snapshot.SourceRecord{{Kind: "file", Name: "a", Tree: d}})
	if !store.IsNotExist(err) {
		t.Fatalf("commit with a missing blob: %v, want not found", err)
	}
	if ids, _ := c.IDs(ctx); len(ids) != 0 {
		t.Errorf("a snapshot was written: %v", ids)
	}
}

func TestAtOrBefore(t *testing.T) {
	c := newCatalog(t)
	ctx := context.Background()
	src := source(t, c, "a", map[string]string{"x": "1"})
	for _, ts := range []string{"20260101T000000Z", "20260201T000000Z"} {
		tm, _ := snapshot.ParseID(ts)
		c.SetClock(func() time.Time { return tm })
		if _, err := c.Commit(ctx, []snapshot.SourceRecord{src}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ at, want string }{
		{"20260101T000000Z", "20260101T000000Z"},
		{"20260115T000000Z", "20260101T000000Z"},
		{"20260201T000000Z", "20260201T000000Z"},
		{"20270101T000000Z", "20260201T000000Z"},
		{"20251231T235959Z", ""},
	} {
		tm, _ := snapshot.ParseID(tc.at)
		got, err := c.AtOrBefore(ctx, tm)
		if tc.want == "" {
			if !errors.Is(err, snapshot.ErrNotFound) {
				t.Errorf("AtOrBefore(%s) = %q, %v; want ErrNotFound", tc.at, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("AtOrBefore(%s) = %q, %v; want %s", tc.at, got, err, tc.want)
		}
	}
}

func TestChannelsPromoteRollbackDelete(t *testing.T) {
	c := newCatalog(t)
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		r, err := c.Commit(ctx, []snapshot.SourceRecord{source(t, c, "a", map[string]string{"x": fmt.Sprint(i)})})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	if _, err := c.Rollback(ctx, "prod"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("rollback of unknown channel: %v", err)
	}
	for _, id := range ids {
		if _, err := c.Promote(ctx, "prod", id); err != nil {
			t.Fatal(err)
		}
	}
	ch, err := c.Rollback(ctx, "prod")
	if err != nil || ch.Snapshot != ids[1] {
		t.Fatalf("rollback: %v, %+v", err, ch)
	}
	ch, err = c.Rollback(ctx, "prod")
	if err != nil || ch.Snapshot != ids[0] {
		t.Fatalf("second rollback: %v, %+v", err, ch)
	}
	if _, err := c.Rollback(ctx, "prod"); !errors.Is(err, snapshot.ErrNoHistory) {
		t.Errorf("rollback past the first promote: %v, want ErrNoHistory", err)
	}
	if len(ch.History) != 5 {
		t.Errorf("history has %d moves, want 5", len(ch.History))
	}
	if err := c.Delete(ctx, ids[0]); !errors.Is(err, snapshot.ErrInUse) {
		t.Errorf("delete of promoted snapshot: %v, want ErrInUse", err)
	}
	if err := c.Delete(ctx, ids[2]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, ids[2]); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("deleted snapshot still readable: %v", err)
	}
	if _, err := c.Promote(ctx, "prod", ids[2]); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("promote of deleted snapshot: %v", err)
	}
	if _, err := c.Promote(ctx, "Bad Name", ids[0]); err == nil {
		t.Error("bad channel name accepted")
	}
}

func TestDiff(t *testing.T) {
	c := newCatalog(t)
	ctx := context.Background()
	ra, err := c.Commit(ctx, []snapshot.SourceRecord{
		source(t, c, "a", map[string]string{"same": "1", "changed": "old", "gone": "x"}),
		source(t, c, "b", map[string]string{"f": "1"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := c.Commit(ctx, []snapshot.SourceRecord{
		source(t, c, "a", map[string]string{"same": "1", "changed": "new", "new": "y"}),
		source(t, c, "c", map[string]string{"f": "1"}),
	})
	if err != nil {
		t.Fatal(err)
	}
	diffs, err := c.Diff(ctx, ra, rb)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]snapshot.SourceDiff{}
	for _, d := range diffs {
		got[d.Source] = d
	}
	a := got["file/a"]
	if a.Status != "changed" || len(a.Added) != 1 || a.Added[0].Name != "new" || len(a.Removed) != 1 || a.Removed[0].Name != "gone" || len(a.Changed) != 1 || a.Changed[0].Name != "changed" {
		t.Errorf("file/a diff: %+v", a)
	}
	if got["file/b"].Status != "removed" || got["file/c"].Status != "added" {
		t.Errorf("statuses: b=%s c=%s", got["file/b"].Status, got["file/c"].Status)
	}
}

func TestDiffItemsVersions(t *testing.T) {
	a := []snapshot.Item{{"pkg", "1.0"}, {"multi", "1"}, {"multi", "2"}}
	b := []snapshot.Item{{"pkg", "1.1"}, {"multi", "2"}, {"multi", "3"}}
	added, removed, changed := snapshot.DiffItems(a, b)
	if len(changed) != 1 || changed[0] != (snapshot.ItemChange{Name: "pkg", From: "1.0", To: "1.1"}) {
		t.Errorf("changed %v", changed)
	}
	if len(added) != 1 || added[0].Version != "3" || len(removed) != 1 || removed[0].Version != "1" {
		t.Errorf("added %v removed %v", added, removed)
	}
}

func TestGCAndVerify(t *testing.T) {
	c := newCatalog(t)
	ctx := context.Background()
	keep := source(t, c, "a", map[string]string{"k": "keep"})
	r1, _ := c.Commit(ctx, []snapshot.SourceRecord{keep})
	drop := source(t, c, "a", map[string]string{"k": "keep", "d": "drop"})
	r2, _ := c.Commit(ctx, []snapshot.SourceRecord{drop})
	orphan, _ := c.Store().Blobs().Put(ctx, strings.NewReader("orphan"), store.Expect{})
	if err := c.Delete(ctx, r2.ID); err != nil {
		t.Fatal(err)
	}
	// With a grace period nothing young is deleted.
	st, err := c.GC(ctx, time.Hour, false)
	if err != nil || st.Deleted != 0 || st.Young != 3 {
		t.Fatalf("gc with grace: %+v, %v", st, err)
	}
	st, err = c.GC(ctx, 0, false)
	if err != nil || st.Deleted != 3 {
		t.Fatalf("gc: %+v, %v; want 3 deleted (orphan, drop, tree of r2)", st, err)
	}
	if _, err := c.Store().Blobs().Stat(ctx, orphan.Digest); !store.IsNotExist(err) {
		t.Error("orphan survived gc")
	}
	vs, err := c.Verify(ctx, nil, 2)
	if err != nil || len(vs.Problems) != 0 || vs.Snapshots != 1 {
		t.Fatalf("verify: %+v, %v", vs, err)
	}
	// Corrupt a blob behind the store's back: verify must notice.
	tree, _ := c.Tree(ctx, r1.Sources[0].Tree)
	path := c.Store().Blobs().(store.Filer).BlobPath(tree.Entries[0].Digest)
	corrupt(t, path)
	vs, _ = c.Verify(ctx, []string{r1.ID}, 2)
	if len(vs.Problems) != 1 || !strings.Contains(vs.Problems[0].Err, "hashes to") {
		t.Errorf("verify of corrupt blob: %+v", vs.Problems)
	}
}

func TestTree(t *testing.T) {
	d := store.DigestOf([]byte("x"))
	for _, bad := range []string{"../x", "/abs", "a//b", "a/./b", "a/..", "", "a\nb", "a\x00b", `a\b`} {
		if _, err := snapshot.NewTree([]snapshot.Entry{{Path: bad, Digest: d}}); err == nil {
			t.Errorf("NewTree accepted path %q", bad)
		}
	}
	if _, err := snapshot.NewTree([]snapshot.Entry{{Path: "a", Digest: d}, {Path: "a", Digest: d}}); err == nil {
		t.Error("duplicate path accepted")
	}
	tr, err := snapshot.NewTree([]snapshot.Entry{{Path: "dists/x/Release", Digest: d, Size: 1}, {Path: "pool/a.deb", Digest: d, Size: 2}, {Path: "dists/x/main/Packages", Digest: d, Size: 3}})
	if err != nil {
		t.Fatal(err)
	}
	back, err := snapshot.DecodeTree(bytes.NewReader(tr.Encode()))
	if err != nil || len(back.Entries) != 3 || back.Entries[0].Path != "dists/x/Release" {
		t.Fatalf("round trip: %v %+v", err, back)
	}
	if got := fmt.Sprint(tr.List("")); got != "[dists/ pool/]" {
		t.Errorf("List root = %s", got)
	}
	if got := fmt.Sprint(tr.List("dists/x")); got != "[Release main/]" {
		t.Errorf("List dists/x = %s", got)
	}
	if !tr.IsDir("dists") || tr.IsDir("dist") || tr.IsDir("pool/a.deb") {
		t.Error("IsDir wrong")
	}
	if _, ok := tr.Lookup("pool/a.deb"); !ok {
		t.Error("Lookup failed")
	}
}

func TestItemsRoundTrip(t *testing.T) {
	in := []snapshot.Item{{Name: "b", Version: "2"}, {Name: "a\tx", Version: "1\n2"}}
	out, err := snapshot.DecodeItems(bytes.NewReader(snapshot.EncodeItems(in)))
	if err != nil {
		t.Fatal(err)
	}
	want := []snapshot.Item{{Name: "a x", Version: "1 2"}, {Name: "b", Version: "2"}}
	if fmt.Sprint(out) != fmt.Sprint(want) {
		t.Errorf("round trip %v, want %v", out, want)
	}
}

// TestSourceRecordJSON: "items" is a count; records written before that
// (items = the list's digest, n_items = the count) still read.
func TestSourceRecordJSON(t *testing.T) {
	d := store.DigestOf([]byte("list"))
	in := snapshot.SourceRecord{Kind: "apt", Name: "d", Items: d, NItems: 7}
	data, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"item_list":"`+string(d)+`"`) || !strings.Contains(string(data), `"items":7`) {
		t.Errorf("encoded %s", data)
	}
	for _, js := range []string{string(data), `{"kind":"apt","name":"d","items":"` + string(d) + `","n_items":7}`} {
		var out snapshot.SourceRecord
		if err := json.Unmarshal([]byte(js), &out); err != nil || out.Items != d || out.NItems != 7 {
			t.Errorf("decoding %s: %+v %v", js, out, err)
		}
	}
}

// TestPick: the snapshot given, else the channel given, else production
// when it exists, else the latest.
func TestPick(t *testing.T) {
	ctx := context.Background()
	chans := map[string]string{}
	latest := ""
	src := snapshot.TargetSource{
		Channel: func(_ context.Context, c string) (string, error) {
			if id, ok := chans[c]; ok {
				return id, nil
			}
			return "", fmt.Errorf("channel %s: %w", c, snapshot.ErrNotFound)
		},
		Latest: func(context.Context) (string, error) {
			if latest == "" {
				return "", snapshot.ErrNotFound
			}
			return latest, nil
		},
	}
	if _, err := snapshot.Pick(ctx, src, "", ""); !errors.Is(err, snapshot.ErrNotFound) || !strings.Contains(err.Error(), "run mirrord sync") {
		t.Errorf("nothing at all: %v", err)
	}
	latest = "20260101T000000Z"
	if tg, _ := snapshot.Pick(ctx, src, "", ""); tg.Snapshot != latest || tg.Channel != "" || tg.Prefix("http://m") != "http://m/snapshots/"+latest {
		t.Errorf("latest: %+v", tg)
	}
	chans["production"] = "20250101T000000Z"
	chans["staging"] = "20240101T000000Z"
	if tg, _ := snapshot.Pick(ctx, src, "", ""); tg.Snapshot != "20250101T000000Z" || tg.Prefix("http://m") != "http://m/channels/production" {
		t.Errorf("production: %+v", tg)
	}
	if tg, _ := snapshot.Pick(ctx, src, "staging", ""); tg.Snapshot != "20240101T000000Z" || tg.Channel != "staging" {
		t.Errorf("staging: %+v", tg)
	}
	if _, err := snapshot.Pick(ctx, src, "nope", ""); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("missing channel: %v", err)
	}
	if tg, _ := snapshot.Pick(ctx, src, "", "20230101T000000Z"); tg.Snapshot != "20230101T000000Z" || tg.Channel != "" {
		t.Errorf("snapshot given: %+v", tg)
	}
}
