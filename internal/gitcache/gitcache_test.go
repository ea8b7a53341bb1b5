package gitcache

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/gitcache/gittest"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/fs"
)

// fixture is one mirrored upstream, its source, and a smart HTTP server
// for the snapshots the test records.
type fixture struct {
	t     *testing.T
	up    *gittest.Upstream
	src   *Source
	state string // the source's state dir (StateDir/git/up)
	h     *Handler
	srv   *httptest.Server
	mu    sync.Mutex
	recs  map[string]*snapshot.Record
	blobs store.Blobs
	// gzipPosts counts upload-pack requests whose body git compressed.
	gzipPosts atomic.Int64
}

func newFixture(t *testing.T, commits int) *fixture {
	up := gittest.NewUpstream(t, "up")
	gittest.Populate(t, up, commits)
	root := t.TempDir()
	src, err := New(Repo{Name: "up", URL: up.URL}, Options{Limiter: NewLimiter(2), CacheDir: root})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, up: up, src: src, state: filepath.Join(root, "up"), recs: map[string]*snapshot.Record{}, blobs: newBlobs(t)}
	f.h = NewHandler(HandlerOptions{CacheDir: root, Log: testLogger(t)})
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func newBlobs(t *testing.T) store.Blobs {
	st, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st.Blobs()
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// serve routes /snapshots/{ID}/git/{name}/{rest} as the server does.
func (f *fixture) serve(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Content-Encoding") == "gzip" {
		f.gzipPosts.Add(1)
	}
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/snapshots/"), "/", 4)
	f.mu.Lock()
	rec := f.recs[parts[0]]
	f.mu.Unlock()
	if rec == nil || len(parts) < 3 || parts[1] != "git" {
		http.NotFound(w, r)
		return
	}
	rest := ""
	if len(parts) == 4 {
		rest = parts[3]
	}
	if !f.h.ServeSource(w, r, rec, parts[2], rest, true) {
		http.Error(w, "tree fallback", http.StatusTeapot)
	}
}

// sync runs the source and records the result as snapshot id.
func (f *fixture) sync(id string, prev *snapshot.SourceRecord) *snapshot.SourceRecord {
	f.t.Helper()
	env := &source.Env{Blobs: f.blobs, Progress: progress.Discard(), Log: testLogger(f.t), Prev: prev}
	res, err := f.src.Sync(context.Background(), env)
	if err != nil {
		f.t.Fatalf("sync: %v", err)
	}
	i := slices.IndexFunc(res.Entries, func(e snapshot.Entry) bool { return e.Path == manifestPath })
	if i < 0 {
		f.t.Fatalf("tree %v has no %s", res.Entries, manifestPath)
	}
	b, err := f.blobs.Open(context.Background(), res.Entries[i].Digest)
	if err != nil {
		f.t.Fatal(err)
	}
	manifest, _ := io.ReadAll(b)
	b.Close()
	if want := RefSetOf(res.Refs).Manifest(); !bytes.Equal(manifest, want) {
		f.t.Errorf("refs.txt\n%s\nwant\n%s", manifest, want)
	}
	sr := snapshot.SourceRecord{Kind: Kind, Name: "up", Upstream: res.Upstream, Refs: res.Refs, Meta: res.Meta}
	f.mu.Lock()
	f.recs[id] = &snapshot.Record{ID: id, Sources: []snapshot.SourceRecord{sr}}
	f.mu.Unlock()
	return &sr
}

func (f *fixture) url(id string) string { return f.srv.URL + "/snapshots/" + id + "/git/up.git" }

// lsRemote runs git ls-remote and returns ref → id, without the peeled
// "^{}" lines.
func lsRemote(t *testing.T, url string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(gittest.Git(t, "", "ls-remote", url), "\n") {
		if id, ref, ok := strings.Cut(line, "\t"); ok && !strings.HasSuffix(ref, "^{}") {
			out[ref] = id
		}
	}
	return out
}

// resolveHead turns a recorded ref set into what ls-remote prints: HEAD as
// its target's object id.
func resolveHead(refs map[string]string) map[string]string {
	out := maps.Clone(refs)
	if h, ok := out["HEAD"]; ok {
		out["HEAD"] = out[strings.TrimPrefix(h, "ref: ")]
	}
	return out
}

// empty returns a new empty repository.
func empty(t *testing.T) string {
	dir := t.TempDir()
	gittest.Git(t, dir, "init", "--quiet")
	return dir
}

func countLoose(t *testing.T, dir string) int {
	for _, line := range strings.Split(gittest.Git(t, dir, "count-objects", "-v"), "\n") {
		if v, ok := strings.CutPrefix(line, "count: "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatal("count-objects printed no count")
	return 0
}

func TestMirrorServeCollect(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 800)
	rec1 := f.sync("s1", nil)
	if want := f.up.Refs(t); !maps.Equal(rec1.Refs, want) {
		t.Fatalf("recorded refs\n%v\nwant upstream's\n%v", rec1.Refs, want)
	}
	if _, ok := rec1.Refs["refs/pull/1/head"]; ok {
		t.Error("refs/pull/* must not be mirrored")
	}

	posts := f.up.Posts.Load()
	again := f.sync("s1b", rec1)
	if f.up.Posts.Load() != posts {
		t.Error("an unchanged upstream was fetched; want only its refs listed")
	}
	if !maps.Equal(again.Refs, rec1.Refs) || again.Meta[metaPin] != rec1.Meta[metaPin] {
		t.Error("an unchanged upstream gave a different ref set or pin")
	}

	if got := lsRemote(t, f.url("s1")); !maps.Equal(got, resolveHead(rec1.Refs)) {
		t.Fatalf("ls-remote\n%v\nwant\n%v", got, resolveHead(rec1.Refs))
	}
	work := t.TempDir()
	clone := filepath.Join(work, "clone")
	gittest.Git(t, "", "clone", "--quiet", f.url("s1"), clone)
	gittest.Git(t, clone, "fsck", "--strict")
	if got, want := gittest.Git(t, clone, "rev-parse", "HEAD"), rec1.Refs["refs/heads/main"]; got != want {
		t.Errorf("clone HEAD %s, want main %s", got, want)
	}
	cached, _ := filepath.Glob(filepath.Join(f.state, packCacheDir, rec1.Meta[metaPin]+"-*"))
	if len(cached) != 1 {
		t.Errorf("full clone cached %d packs, want 1", len(cached))
	}
	again2 := filepath.Join(work, "again")
	gittest.Git(t, "", "clone", "--quiet", "--mirror", f.url("s1"), again2)
	gittest.Git(t, again2, "fsck", "--strict")

	partial := filepath.Join(work, "partial")
	gittest.Git(t, "", "clone", "--quiet", "--filter=blob:none", f.url("s1"), partial)
	gittest.Git(t, partial, "fsck")
	if old := gittest.Git(t, partial, "rev-parse", "HEAD~500"); gittest.Run(t, empty(t), "", nil, "fetch", f.url("s1"), old).Err != nil {
		t.Error("a commit reachable from the snapshot's refs cannot be fetched by id")
	}

	shallow := filepath.Join(work, "shallow")
	gittest.Git(t, "", "clone", "--quiet", "--depth", "1", f.url("s1"), shallow)
	if n := gittest.Git(t, shallow, "rev-list", "--count", "HEAD"); n != "1" {
		t.Errorf("--depth 1 clone has %s commits", n)
	}

	// Upstream moves on: 100 commits on main, feature force-pushed, old
	// deleted, a new tag.
	oldFeature := rec1.Refs["refs/heads/feature"]
	gittest.Advance(t, f.up, 100)
	rec2 := f.sync("s2", rec1)
	if want := f.up.Refs(t); !maps.Equal(rec2.Refs, want) {
		t.Fatalf("after the upstream moved: recorded\n%v\nwant\n%v", rec2.Refs, want)
	}
	if rec2.Meta[metaPin] == rec1.Meta[metaPin] {
		t.Fatal("a changed ref set kept its pin")
	}

	// An incremental fetch transfers exactly the new objects.
	before := countLoose(t, clone)
	gittest.Git(t, clone, "-c", "fetch.unpackLimit=1000000", "-c", "transfer.unpackLimit=1000000",
		"fetch", "--quiet", "--tags", "--force", f.url("s2"), "+refs/heads/*:refs/remotes/s2/*")
	got := countLoose(t, clone) - before
	newTips := []string{"rev-list", "--objects", rec2.Refs["refs/heads/main"], rec2.Refs["refs/heads/feature"], rec2.Refs["refs/tags/v3.0"], "--not"}
	for ref, id := range rec1.Refs {
		if ref != "HEAD" {
			newTips = append(newTips, id)
		}
	}
	want := len(strings.Split(gittest.Git(t, f.up.Dir, newTips...), "\n"))
	if got != want {
		t.Errorf("incremental fetch received %d objects, want exactly the %d new ones", got, want)
	}
	if f.gzipPosts.Load() == 0 {
		t.Error("git sent no gzip-compressed request (negotiations over 1 KiB are), so that path went untested")
	}
	gittest.Git(t, clone, "fsck", "--strict")

	// Each snapshot serves exactly its own refs, and refuses wants outside
	// them, in protocol v0 and when the client asks for v2 (from an empty
	// repository: a client that has an object does not ask for it).
	if got := lsRemote(t, f.url("s1")); !maps.Equal(got, resolveHead(rec1.Refs)) {
		t.Errorf("s1 changed after s2 was synced: %v", got)
	}
	for _, proto := range []string{"0", "2"} {
		r := gittest.Run(t, empty(t), "", nil, "-c", "protocol.version="+proto, "fetch", f.url("s2"), oldFeature)
		if r.Err == nil || !strings.Contains(r.Stderr, "not our ref") {
			t.Errorf("protocol v%s: fetching s1's old feature tip from s2: err %v, stderr %q; want refused (not our ref)", proto, r.Err, r.Stderr)
		}
		r = gittest.Run(t, empty(t), "", nil, "-c", "protocol.version="+proto, "fetch", f.url("s1"), rec2.Refs["refs/heads/main"])
		if r.Err == nil || !strings.Contains(r.Stderr, "not our ref") {
			t.Errorf("protocol v%s: fetching s2's main from s1: err %v, stderr %q; want refused", proto, r.Err, r.Stderr)
		}
	}

	// Trimming the cache: only s2 is live. s1's namespace and the objects
	// only it needed go.
	g, err := findGit("")
	if err != nil {
		t.Fatal(err)
	}
	m, err := openMirror(f.state, g)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.dropPins(context.Background(), map[string]bool{rec2.Meta[metaPin]: true}); err != nil {
		t.Fatal(err)
	}
	if ok, _ := m.pinned(RefSetOf(rec1.Refs)); ok {
		t.Error("s1's pin survived gc")
	}
	if r := gittest.Run(t, m.dir, "", nil, "cat-file", "-e", oldFeature); r.Err == nil {
		t.Error("the force-pushed-away commit survived gc")
	}
	if left, _ := filepath.Glob(filepath.Join(f.state, packCacheDir, rec1.Meta[metaPin]+"-*")); len(left) > 0 {
		t.Errorf("s1's cached packs survived gc: %v", left)
	}
	fresh := filepath.Join(work, "fresh")
	gittest.Git(t, "", "clone", "--quiet", "--mirror", f.url("s2"), fresh)
	gittest.Git(t, fresh, "fsck", "--strict")
}

func TestProtocolEdges(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 50)
	rec := f.sync("s1", nil)
	work := t.TempDir()
	clone := filepath.Join(work, "clone")
	gittest.Git(t, "", "clone", "--quiet", f.url("s1"), clone)

	r := gittest.Run(t, clone, "", nil, "push", f.url("s1"), "HEAD:refs/heads/mine")
	if r.Err == nil || !strings.Contains(r.Stderr, "read-only") {
		t.Errorf("push: err %v, stderr %q; want refused as read-only", r.Err, r.Stderr)
	}

	for path, want := range map[string]int{
		"/info/refs":                          http.StatusNotFound, // dumb HTTP
		"/HEAD":                               http.StatusNotFound,
		"/objects/info/packs":                 http.StatusNotFound,
		"/info/refs?service=git-receive-pack": http.StatusForbidden,
	} {
		resp, err := http.Get(f.url("s1") + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	resp, err := http.Get(f.srv.URL + "/snapshots/s1/git/nope.git/info/refs?service=git-upload-pack")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown repository: %d, want 404", resp.StatusCode)
	}

	// A gzip-compressed request body, as git sends large negotiations.
	var req bytes.Buffer
	req.Write(pktLine("want " + rec.Refs["refs/heads/main"] + " side-band-64k ofs-delta\n"))
	req.WriteString("0000")
	req.Write(pktLine("done\n"))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(req.Bytes())
	zw.Close()
	hreq, _ := http.NewRequest(http.MethodPost, f.url("s1")+"/git-upload-pack", &gz)
	hreq.Header.Set("Content-Type", requestCT)
	hreq.Header.Set("Content-Encoding", "gzip")
	resp, err = http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.HasPrefix(body, []byte("0008NAK\n")) || !bytes.Contains(body, []byte("PACK")) {
		t.Errorf("gzip request: status %d, body starts %q; want a NAK and a pack", resp.StatusCode, body[:min(len(body), 40)])
	}

	// A protocol v2 request (header and body) gets no pack: the server
	// speaks v0 only, where upload-pack checks every want.
	v2 := append(pktLine("command=fetch\n"), "0001"...)
	v2 = append(v2, pktLine("want "+rec.Refs["refs/heads/main"]+"\n")...)
	v2 = append(v2, pktLine("done\n")...)
	v2 = append(v2, "0000"...)
	hreq, _ = http.NewRequest(http.MethodPost, f.url("s1")+"/git-upload-pack", bytes.NewReader(v2))
	hreq.Header.Set("Content-Type", requestCT)
	hreq.Header.Set("Git-Protocol", "version=2")
	resp, err = http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if bytes.Contains(body, []byte("PACK")) {
		t.Errorf("a protocol v2 fetch request was answered with a pack")
	}

	// Without ".git" the smart paths work too; other paths fall back to
	// the tree server.
	if got := lsRemote(t, f.srv.URL+"/snapshots/s1/git/up"); !maps.Equal(got, resolveHead(rec.Refs)) {
		t.Errorf("ls-remote without .git: %v", got)
	}
	resp, err = http.Get(f.srv.URL + "/snapshots/s1/git/up/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTeapot {
		t.Errorf("non-git path under NAME: %d, want the tree fallback", resp.StatusCode)
	}
}

func TestLocalPathAndEmptyUpstream(t *testing.T) {
	t.Parallel()
	gittest.RequireGit(t)
	base := t.TempDir()
	work := filepath.Join(base, "work")
	gittest.Git(t, "", "init", "--quiet", "--initial-branch=trunk", work)
	os.WriteFile(filepath.Join(work, "README"), []byte("hello\n"), 0o644)
	gittest.Git(t, work, "add", "README")
	gittest.Git(t, work, "commit", "--quiet", "-m", "first")
	tip := gittest.Git(t, work, "rev-parse", "HEAD")
	empty := filepath.Join(base, "empty.git")
	gittest.Git(t, "", "init", "--quiet", "--bare", empty)

	for _, tc := range []struct {
		url  string
		want map[string]string
	}{
		{"work", map[string]string{"refs/heads/trunk": tip, "HEAD": "ref: refs/heads/trunk"}},
		{"file://" + empty, map[string]string{}},
	} {
		src, err := New(Repo{Name: "local", URL: tc.url, BaseDir: base}, Options{CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		env := &source.Env{Blobs: newBlobs(t), Progress: progress.Discard(), Log: testLogger(t)}
		res, err := src.Sync(context.Background(), env)
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if !maps.Equal(res.Refs, tc.want) {
			t.Errorf("%s: refs %v, want %v", tc.url, res.Refs, tc.want)
		}
	}
}

func TestUpstreamErrors(t *testing.T) {
	t.Parallel()
	gittest.RequireGit(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hang.Close()
	missing := filepath.Join(t.TempDir(), "missing-token")
	for _, tc := range []struct {
		repo    Repo
		timeout time.Duration
		want    []string
	}{
		{Repo{Name: "gone", URL: srv.URL + "/gone.git"}, 0, []string{"git/gone", srv.URL + "/gone.git", "repository not found"}},
		{Repo{Name: "tok", URL: srv.URL + "/x.git", TokenFile: missing}, 0, []string{"git/tok", "token_file", missing}},
		{Repo{Name: "slow", URL: hang.URL + "/slow.git"}, 300 * time.Millisecond, []string{"git/slow", hang.URL, "per-repository limit is 300ms"}},
	} {
		src, err := New(tc.repo, Options{Timeout: tc.timeout, CacheDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		env := &source.Env{Blobs: newBlobs(t), Progress: progress.Discard(), Log: testLogger(t)}
		_, err = src.Sync(context.Background(), env)
		if err == nil {
			t.Fatalf("%s: sync succeeded", tc.repo.Name)
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: error %q does not mention %q", tc.repo.Name, err, w)
			}
		}
	}
}
