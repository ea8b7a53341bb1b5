package gitcache

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mirrord/mirrord/internal/gitcache/gittest"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/fs"
	"github.com/mirrord/mirrord/internal/syncer"
)

// storeFixture syncs one upstream into a real catalog, as mirrord sync
// does, and serves its snapshots from a state dir that tests may delete.
type storeFixture struct {
	t     *testing.T
	up    *gittest.Upstream
	cat   *snapshot.Catalog
	state string // data_dir/state
	sy    *syncer.Syncer
	srv   *httptest.Server
}

func newStoreFixture(t *testing.T, maxPacks int) *storeFixture {
	up := gittest.NewUpstream(t, "up")
	gittest.Populate(t, up, 200)
	data := t.TempDir()
	st, err := fs.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	f := &storeFixture{t: t, up: up, cat: snapshot.New(st), state: filepath.Join(data, "state")}
	src, err := New(Repo{Name: "up", URL: up.URL}, Options{MaxPacks: maxPacks, ReposYAML: []byte("g:\n  up:\n"), CacheDir: filepath.Join(f.state, Kind)})
	if err != nil {
		t.Fatal(err)
	}
	f.sy = &syncer.Syncer{Catalog: f.cat, Progress: progress.Discard(), Log: testLogger(t), Sources: []source.Source{src}}
	h := NewHandler(HandlerOptions{CacheDir: filepath.Join(f.state, Kind), Catalog: f.cat, PublicURL: "http://mirror.invalid", Log: testLogger(t)})
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/snapshots/"), "/", 4)
		rec, err := f.cat.Get(r.Context(), parts[0])
		if err != nil || len(parts) < 3 {
			http.NotFound(w, r)
			return
		}
		rest := ""
		if len(parts) == 4 {
			rest = parts[3]
		}
		if !h.ServeSource(w, r, rec, parts[2], rest, true) {
			http.Error(w, "tree fallback", http.StatusTeapot)
		}
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *storeFixture) sync() (*snapshot.Record, []pack) {
	f.t.Helper()
	rec, err := f.sy.Run(context.Background(), nil)
	if err != nil {
		f.t.Fatalf("sync: %v", err)
	}
	tree, err := f.cat.Tree(context.Background(), rec.Sources[0].Tree)
	if err != nil {
		f.t.Fatal(err)
	}
	return rec, chainOf(tree.Entries)
}

func (f *storeFixture) url(rec *snapshot.Record) string {
	return f.srv.URL + "/snapshots/" + rec.ID + "/git/up.git"
}

// commit adds n commits to the upstream's main.
func (f *storeFixture) commit(tag string, n int) {
	gittest.Import(f.t, f.up.Dir, (&gittest.Stream{Files: 300}).Commits("refs/heads/main", "refs/heads/main^0", "", tag, n).String())
}

// dropState deletes data_dir/state entirely: the local repositories are
// a cache of the store.
func (f *storeFixture) dropState() {
	f.t.Helper()
	if err := os.RemoveAll(f.state); err != nil {
		f.t.Fatal(err)
	}
}

// newObjects counts the objects rec reaches that base does not, in the upstream.
func (f *storeFixture) newObjects(rec, base *snapshot.Record) int {
	args := append([]string{"rev-list", "--objects"}, RefSetOf(rec.Sources[0].Refs).tips()...)
	args = append(args, "--not")
	args = append(args, RefSetOf(base.Sources[0].Refs).tips()...)
	out := gittest.Git(f.t, f.up.Dir, args...)
	if out == "" {
		return 0
	}
	return len(strings.Split(out, "\n"))
}

func packCount(t *testing.T, f *storeFixture, p pack) uint32 {
	rc, err := f.cat.Store().Blobs().Open(context.Background(), p.files[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	tmp := filepath.Join(t.TempDir(), "p.pack")
	data := make([]byte, 12)
	if _, err := rc.Read(data); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(tmp, data, 0o644)
	n, err := packObjects(tmp)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStateIsACache: every snapshot's objects are packs in the store;
// with data_dir/state deleted (even on the host that synced) a clone, fsck
// and an incremental fetch work, and the next sync adds a pack of exactly
// the new objects.
func TestStateIsACache(t *testing.T) {
	f := newStoreFixture(t, 3)
	rec1, chain1 := f.sync()
	if len(chain1) != 1 || len(chain1[0].files) != 3 {
		t.Fatalf("first sync: chain %v, want one full pack with its index and bitmap", chain1)
	}
	gittest.Advance(t, f.up, 50)
	rec2, chain2 := f.sync()
	if len(chain2) != 2 || chain2[0].name != chain1[0].name && chain2[1].name != chain1[0].name {
		t.Fatalf("second sync: chain %v, want the first pack plus one", chain2)
	}
	if got, want := int(packCount(t, f, chain2[1])+packCount(t, f, chain2[0])-packCount(t, f, chain1[0])), f.newObjects(rec2, rec1); got != want {
		t.Errorf("the second pack holds %d objects, want the %d new ones", got, want)
	}

	f.dropState()
	clone := filepath.Join(t.TempDir(), "clone")
	gittest.Git(t, "", "clone", "--quiet", "--mirror", f.url(rec1), clone)
	gittest.Git(t, clone, "fsck", "--strict")
	if got, want := lsRemote(t, f.url(rec1)), resolveHead(rec1.Sources[0].Refs); len(got) != len(want) {
		t.Errorf("ls-remote from a rebuilt repository: %v, want %v", got, want)
	}
	before := countLoose(t, clone)
	gittest.Git(t, clone, "-c", "fetch.unpackLimit=1000000", "fetch", "--quiet", f.url(rec2), "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
	gittest.Git(t, clone, "fsck", "--strict")
	if got, want := countLoose(t, clone)-before, f.newObjects(rec2, rec1); got != want {
		t.Errorf("incremental fetch from a rebuilt repository received %d objects, want the %d new ones", got, want)
	}

	// A sync on a host without state rebuilds the previous snapshot and
	// adds only what is new.
	f.dropState()
	f.commit("three", 20)
	rec3, chain3 := f.sync()
	if len(chain3) != 3 {
		t.Fatalf("third sync: %d packs, want 3", len(chain3))
	}
	var added pack
	for _, p := range chain3 {
		if p.name != chain2[0].name && p.name != chain2[1].name {
			added = p
		}
	}
	if got, want := int(packCount(t, f, added)), f.newObjects(rec3, rec2); got != want {
		t.Errorf("sync after losing state: new pack of %d objects, want %d", got, want)
	}
	// The chain is at its bound: the next change writes one full pack.
	f.commit("four", 5)
	rec4, chain4 := f.sync()
	if len(chain4) != 1 || len(chain4[0].files) != 3 {
		t.Fatalf("fourth sync: chain %v, want one consolidated pack", chain4)
	}
	rec5, _ := f.sync()
	if rec5.Sources[0].Tree != rec4.Sources[0].Tree {
		t.Errorf("an unchanged upstream changed the tree")
	}
	// The next sync trims the pins of deleted snapshots from the cache.
	repo := filepath.Join(f.state, Kind, "up", repoDirName)
	pin2 := rec2.Sources[0].Meta[metaPin]
	if gittest.Git(t, repo, "for-each-ref", namespacePrefix(pin2)) == "" {
		t.Fatalf("pin %s was not rebuilt in the cache", pin2)
	}
	for _, rec := range []*snapshot.Record{rec1, rec2} {
		if err := f.cat.Delete(context.Background(), rec.ID); err != nil {
			t.Fatal(err)
		}
	}
	f.sync()
	if left := gittest.Git(t, repo, "for-each-ref", namespacePrefix(pin2)); left != "" {
		t.Errorf("the pin of a deleted snapshot survived the next sync:\n%s", left)
	}
	// Clients arriving together at a cold cache all get the snapshot.
	f.dropState()
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := gittest.Run(t, "", "", nil, "clone", "--quiet", "--mirror", f.url(rec3), filepath.Join(t.TempDir(), "c"))
			if r.Err != nil {
				errs <- r.Stderr
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("concurrent clone from a cold cache: %s", e)
	}
	f.dropState()
	for _, rec := range []*snapshot.Record{rec3, rec4} {
		dir := filepath.Join(t.TempDir(), "m")
		gittest.Git(t, "", "clone", "--quiet", "--mirror", f.url(rec), dir)
		gittest.Git(t, dir, "fsck", "--strict")
		if got := gittest.Git(t, dir, "rev-parse", "refs/heads/main"); got != rec.Sources[0].Refs["refs/heads/main"] {
			t.Errorf("snapshot %s: main at %s, want %s", rec.ID, got, rec.Sources[0].Refs["refs/heads/main"])
		}
	}
}

// TestHydrateRefusesCorruptPacks: a pack blob whose content no longer
// matches its digest is not placed; the clone fails with a message that
// points at mirrord verify.
func TestHydrateRefusesCorruptPacks(t *testing.T) {
	f := newStoreFixture(t, 16)
	rec, chain := f.sync()
	f.dropState()
	st, ok := f.cat.Store().Blobs().(store.Filer)
	if !ok {
		t.Fatal("the fs store has no local blob files")
	}
	file := st.BlobPath(chain[0].files[0].Digest)
	os.Chmod(file, 0o644)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)/2] ^= 1
	os.WriteFile(file, data, 0o644)
	r := gittest.Run(t, "", "", nil, "clone", "--quiet", f.url(rec), filepath.Join(t.TempDir(), "c"))
	if r.Err == nil || !strings.Contains(r.Stderr, "mirrord verify") {
		t.Errorf("clone from a corrupt pack: err %v, stderr %q; want refused, naming mirrord verify", r.Err, r.Stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(f.state, Kind, "up", repoDirName, "objects", "pack", "*.pack")); len(left) > 0 {
		t.Errorf("a corrupt pack was placed: %v", left)
	}
}
