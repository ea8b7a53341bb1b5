package apt

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store/fs"
	"github.com/mirrord/mirrord/internal/syncer"
)

// A signing key takes seconds to generate: make one per test binary and
// copy it into each test's data dir.
var (
	keyOnce sync.Once
	keyData []byte
	keyErr  error
)

func signingKey(t *testing.T, dir string) *signing.Key {
	t.Helper()
	keyOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "apt-signing")
		if err != nil {
			keyErr = err
			return
		}
		defer os.RemoveAll(tmp)
		if _, keyErr = signing.LoadOrCreate(filepath.Join(tmp, "k.asc"), "mirrord test"); keyErr == nil {
			keyData, keyErr = os.ReadFile(filepath.Join(tmp, "k.asc"))
		}
	})
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	p := filepath.Join(dir, "signing.asc")
	if err := os.WriteFile(p, keyData, 0o600); err != nil {
		t.Fatal(err)
	}
	k, err := signing.LoadOrCreate(p, "")
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// mirror is a mirrord installation in a temp dir: store, catalog, key.
type mirror struct {
	t       *testing.T
	dir     string
	cat     *snapshot.Catalog
	key     *signing.Key
	log     *slog.Logger
	logBuf  *bytes.Buffer
	public  string
	retries int
}

func newMirror(t *testing.T) *mirror {
	dir := t.TempDir()
	st, err := fs.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	return &mirror{t: t, dir: dir, cat: snapshot.New(st), key: signingKey(t, dir), logBuf: &buf,
		log: slog.New(slog.NewTextHandler(&lockedWriter{w: &buf}, &slog.HandlerOptions{Level: slog.LevelDebug})), public: "http://mirror.invalid", retries: -1}
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// aptConfig is a validated-looking AptSource for repo r.
func aptConfig(r *apttest.Repo, mod func(*config.AptSource)) config.AptSource {
	o := r.Options()
	c := config.AptSource{Name: "fixture", URL: r.URL, Suites: o.Suites, Components: o.Components,
		Architectures: o.Architectures, Keyring: r.Key.Keyring}
	if mod != nil {
		mod(&c)
	}
	return c
}

// sync runs one sync of src through the real syncer and returns the new
// snapshot (or the error, in which case no snapshot may have been made).
func (m *mirror) sync(src source.Source) (*snapshot.Record, error) {
	m.t.Helper()
	before, _ := m.cat.IDs(context.Background())
	f := fetch.New(m.cat.Store().Blobs(), fetch.Options{Retries: m.retries, Backoff: 10 * time.Millisecond, Logger: m.log})
	s := &syncer.Syncer{Catalog: m.cat, Fetch: f, Progress: progress.Discard(), Log: m.log,
		Sources: []source.Source{src}, Signer: m.key, PublicURL: m.public}
	rec, err := s.Run(context.Background(), nil)
	if err != nil {
		after, _ := m.cat.IDs(context.Background())
		if len(after) != len(before) {
			m.t.Fatalf("a failed sync made a snapshot: %v -> %v", before, after)
		}
		return nil, err
	}
	return rec, nil
}

func (m *mirror) mustSync(src source.Source) *snapshot.Record {
	m.t.Helper()
	rec, err := m.sync(src)
	if err != nil {
		m.t.Fatalf("sync: %v\nlog:\n%s", err, m.logBuf.String())
	}
	return rec
}

func (m *mirror) tree(rec *snapshot.Record) *snapshot.Tree {
	m.t.Helper()
	t, err := m.cat.Tree(context.Background(), rec.Sources[0].Tree)
	if err != nil {
		m.t.Fatal(err)
	}
	return t
}

func (m *mirror) blob(e snapshot.Entry) []byte {
	m.t.Helper()
	b, err := m.cat.Store().Blobs().Open(context.Background(), e.Digest)
	if err != nil {
		m.t.Fatal(err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		m.t.Fatal(err)
	}
	return data
}

func (m *mirror) file(rec *snapshot.Record, p string) []byte {
	m.t.Helper()
	e, ok := m.tree(rec).Lookup(p)
	if !ok {
		m.t.Fatalf("snapshot %s has no %s", rec.ID, p)
	}
	return m.blob(e)
}

// serve serves a snapshot's tree the way mirrord serve does (by path,
// from the store) on 127.0.0.1 and returns its URL.
func (m *mirror) serve(rec *snapshot.Record) string {
	m.t.Helper()
	tree := m.tree(rec)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e, ok := tree.Lookup(strings.TrimPrefix(r.URL.Path, "/"))
		if !ok {
			http.NotFound(w, r)
			return
		}
		b, err := m.cat.Store().Blobs().Open(r.Context(), e.Digest)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer b.Close()
		http.ServeContent(w, r, "", time.Time{}, b)
	}))
	m.t.Cleanup(srv.Close)
	return srv.URL
}

// publicKey writes mirrord's public key for apt's signed-by.
func (m *mirror) publicKey() string {
	p := filepath.Join(m.dir, "mirrord.asc")
	if err := os.WriteFile(p, m.key.PublicArmored(), 0o644); err != nil {
		m.t.Fatal(err)
	}
	return p
}

// client returns an apt client for the served snapshot, trusting only
// mirrord's key.
func (m *mirror) client(url string, suites ...string) *apttest.Client {
	var b strings.Builder
	for _, s := range suites {
		b.WriteString("deb [signed-by=" + m.publicKey() + "] " + url + " " + s + " main\n")
	}
	return apttest.NewClient(m.t, "", "mirror.list", b.String())
}

func readAllDecompressed(data []byte, suffix string) ([]byte, error) {
	d, err := decompress(bytes.NewReader(data), suffix, 1<<30)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return io.ReadAll(d)
}
