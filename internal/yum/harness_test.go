package yum

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/fs"
	"github.com/mirrord/mirrord/internal/syncer"
	"github.com/mirrord/mirrord/internal/yum/yumtest"
)

// signingKey is one mirrord key for the whole test binary (generating an
// RSA key per test would dominate the run time).
var signingKey []byte

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "yum-test-key")
	if err != nil {
		panic(err)
	}
	path := filepath.Join(dir, "mirrord.asc")
	if _, err := signing.LoadOrCreate(path, "mirrord test"); err != nil {
		panic(err)
	}
	if signingKey, err = os.ReadFile(path); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// harness is a mirrord store and syncer for one test.
type harness struct {
	t      *testing.T
	dir    string
	cat    *snapshot.Catalog
	blobs  store.Blobs
	signer *signing.Key
	log    strings.Builder
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	dir := t.TempDir()
	st, err := fs.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "signing.asc")
	if err := os.WriteFile(keyPath, signingKey, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := signing.LoadOrCreate(keyPath, "")
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, dir: dir, cat: snapshot.New(st), blobs: st.Blobs(), signer: key}
}

// sync runs one sync of srcs and returns the new snapshot (or the error).
func (h *harness) sync(srcs ...*Source) (*snapshot.Record, error) {
	h.t.Helper()
	log := slog.New(slog.NewTextHandler(&h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f := fetch.New(h.blobs, fetch.Options{Retries: 1, Backoff: 10 * time.Millisecond, StallTimeout: 10 * time.Second, Logger: log})
	sy := &syncer.Syncer{
		Catalog: h.cat, Fetch: f, Progress: progress.Discard(), Log: log,
		Signer: h.signer, PublicURL: "http://mirror.invalid",
	}
	for _, s := range srcs {
		sy.Sources = append(sy.Sources, s)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return sy.Run(ctx, nil)
}

// mustSync syncs and fails the test on error.
func (h *harness) mustSync(srcs ...*Source) *snapshot.Record {
	h.t.Helper()
	rec, err := h.sync(srcs...)
	if err != nil {
		h.t.Fatalf("sync: %v\nlog:\n%s", err, h.log.String())
	}
	return rec
}

// snapshots is the number of snapshot records.
func (h *harness) snapshots() int {
	h.t.Helper()
	ids, err := h.cat.IDs(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return len(ids)
}

func (h *harness) tree(rec *snapshot.Record, name string) *snapshot.Tree {
	h.t.Helper()
	src, ok := rec.Source("yum/" + name)
	if !ok {
		h.t.Fatalf("snapshot %s has no yum/%s", rec.ID, name)
	}
	tr, err := h.cat.Tree(context.Background(), src.Tree)
	if err != nil {
		h.t.Fatal(err)
	}
	return tr
}

// file returns the content of path in the source's tree.
func (h *harness) file(rec *snapshot.Record, name, path string) []byte {
	h.t.Helper()
	e, ok := h.tree(rec, name).Lookup(path)
	if !ok {
		h.t.Fatalf("snapshot %s yum/%s has no %s", rec.ID, name, path)
	}
	b, err := h.blobs.Open(context.Background(), e.Digest)
	if err != nil {
		h.t.Fatal(err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		h.t.Fatal(err)
	}
	return data
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// newSource builds a source for a fixture server.
func newSource(t *testing.T, srv *yumtest.Server, f *yumtest.Fixture, mod func(*Options)) *Source {
	t.Helper()
	opt := Options{Name: "fixture", URL: srv.BaseURL(), GPGKey: f.Signer.PublicKeyFile, Verbatim: true}
	if mod != nil {
		mod(&opt)
	}
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
