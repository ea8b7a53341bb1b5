// Package server serves mirrord's snapshots and channels over HTTP: the file
// trees (apt, yum, file; git through a KindServer), the JSON API, the web UI,
// /healthz, /metrics and mirrord's public key.
//
// URL layout (DESIGN.md, "Serving"):
//
//	/snapshots/{ID}/{KIND}/{NAME}/{PATH...}   immutable snapshot trees
//	/channels/{CHANNEL}/{KIND}/{NAME}/{PATH...}  the channel's current snapshot, no-cache
//	/snapshots/{ID}/bootstrap.sh  /channels/{CHANNEL}/bootstrap.sh  node set-up script (Options.Bootstrap)
//	/keys/mirrord.asc  /api/v1/...  /metrics  /healthz  /
//
// Every request path is checked before any lookup: ".", ".." and empty
// segments, backslashes, NUL and control bytes, and encoded slashes,
// backslashes or NULs are refused with 400. The server does no path
// cleaning of its own and never redirects to a cleaned path.
package server

import (
	"context"
	"crypto/sha256"
	"errors"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// Options configures a Server.
type Options struct {
	Catalog   *snapshot.Catalog
	PublicKey []byte // armored mirrord public key, served at /keys/mirrord.asc (404 if nil)
	// Token is the bearer token for write endpoints; "" refuses writes
	// with 403.
	Token    string
	Logger   *slog.Logger
	Registry *prometheus.Registry  // metrics are registered here and served at /metrics; nil = a new registry
	Kinds    map[string]KindServer // optional per-kind handlers (git smart HTTP)
	Syncs    Syncs                 // optional; nil → POST /api/v1/syncs answers 501
	Exporter Exporter              // optional; nil → GET /api/v1/snapshots/{ID}/export answers 501
	Version  string
	// RefreshInterval bounds how stale the cached snapshot list and
	// channel pointers may be (another process may change them); default
	// 250ms.
	RefreshInterval time.Duration
	// Bootstrap, when set, renders the node bootstrap script served at
	// /snapshots/{ID}/bootstrap.sh and /channels/{C}/bootstrap.sh; root
	// is that URL's path without "/bootstrap.sh" and rec the snapshot it
	// names. Nil answers 404 there.
	Bootstrap func(ctx context.Context, rec *snapshot.Record, root string) ([]byte, error)
	// OnChange, when set, is called after a promote, rollback or delete
	// made through the API (after the server's own view is refreshed).
	OnChange func(ctx context.Context)
	// Presign, when set (store.redirect), answers blob GETs with a 302 to
	// the URL it returns for the blob's digest (a presigned S3 URL).
	Presign func(ctx context.Context, d store.Digest) (string, error)
	// PublicKeyFunc, when set, is asked for the key served at
	// /keys/mirrord.asc while PublicKey is nil (a replica that learns the
	// store's signing identity after it started).
	PublicKeyFunc func(ctx context.Context) ([]byte, error)
	// UI is what the web UI shows beyond the catalog.
	UI UIOptions
	// SecureWrites (set when tls: is configured) refuses write endpoints
	// over plain HTTP unless the peer is on this host: a bearer token sent
	// in the clear can be read on the way.
	SecureWrites bool
}

// KindServer serves a source kind that is not a plain file tree (git). name
// is the raw URL segment after the kind ("stdlib.git"); rest is the path
// after it without its leading slash (may be ""). immutable is true under
// /snapshots/ and false under /channels/. It returns false if it does not
// handle the request, and the server falls back to tree serving. It is
// called for every method (git-upload-pack is a POST); the tree fallback
// answers only GET and HEAD.
type KindServer interface {
	ServeSource(w http.ResponseWriter, r *http.Request, rec *snapshot.Record, name, rest string, immutable bool) bool
}

// PathDigester is an optional capability of a KindServer: paths that name
// their content by digest (apt's by-hash/SHA256/<hex>) are answered from
// the store when the tree lacks them.
type PathDigester interface {
	PathDigest(path string) (store.Digest, bool)
}

// Syncs starts syncs and reports their progress for the API. It may also
// implement SyncLister (the overview shows the newest sync) and
// SyncWatcher (live progress: /api/v1/syncs/{N}/events).
type Syncs interface {
	// Start begins a sync of sources (all when empty) and returns its
	// id. ctx is not tied to the HTTP request. The error wraps
	// ErrSyncRunning when a sync runs already.
	Start(ctx context.Context, sources []string) (id int, err error)
	// Status returns a JSON-marshalable progress report.
	Status(id int) (any, bool)
}

// Exporter streams air-gap bundles (internal/bundle) for
// GET /api/v1/snapshots/{ID}/export. Export must return errors it finds
// before writing its first byte (unknown snapshot: snapshot.ErrNotFound),
// so they can be answered with a status.
type Exporter interface {
	Export(ctx context.Context, w io.Writer, id, since string) error
}

// ErrSyncRunning is what Syncs.Start wraps when a sync is already running.
var ErrSyncRunning = errors.New("a sync is already running")

// ErrBadRequest is what Syncs.Start wraps when the request cannot run as
// asked (a broken config file, an unknown source): answered 400.
var ErrBadRequest = errors.New("bad request")

const defaultRefresh = 250 * time.Millisecond

// Server is mirrord's HTTP handler.
type Server struct {
	opt   Options
	cat   *snapshot.Catalog
	blobs store.Blobs
	filer store.Filer // nil when the backend has no local files
	files fileOpener  // nil when the backend has no local read cache
	// versioner tells when another process changed the metadata (nil:
	// poll every refresh interval).
	versioner store.Versioner
	log       *slog.Logger
	refresh   time.Duration

	cur         atomic.Pointer[view]
	reloadMu    sync.Mutex
	prefetching atomic.Bool
	recs        sync.Map // snapshot ID → *recInfo (immutable)

	cache   *blobCache
	met     *metrics
	promH   http.Handler
	tmpl    *template.Template
	token   atomic.Pointer[[sha256.Size]byte] // sha256 of the bearer token; nil: writes disabled
	keyETag string
	asset   string    // hash of web/static, in the UI's asset URLs
	started time.Time // Last-Modified of the UI's assets
	replica string    // Move.By names this server as this

	itemsCache itemsCache
	search     searchCache

	recorders sync.Pool
}

// New returns a server for opt.
func New(opt Options) (*Server, error) {
	if opt.Catalog == nil {
		return nil, errors.New("server: Options.Catalog is required")
	}
	s := &Server{
		opt:     opt,
		cat:     opt.Catalog,
		blobs:   opt.Catalog.Store().Blobs(),
		log:     opt.Logger,
		refresh: opt.RefreshInterval,
		cache:   newBlobCache(smallBlobMax, blobCacheMax),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.refresh <= 0 {
		s.refresh = defaultRefresh
	}
	if f, ok := s.blobs.(store.Filer); ok {
		s.filer = f
	}
	if f, ok := s.blobs.(fileOpener); ok {
		s.files = f
	}
	if v, ok := opt.Catalog.Store().Meta().(store.Versioner); ok {
		s.versioner = v
	}
	s.SetToken(opt.Token)
	if opt.PublicKey != nil {
		s.keyETag = `"` + string(store.DigestOf(opt.PublicKey)) + `"`
	}
	t, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	s.tmpl = t
	s.asset, s.started = assetHash(), time.Now()
	s.replica = opt.UI.Replica
	if s.replica == "" {
		s.replica, _ = os.Hostname()
	}
	reg := opt.Registry
	own := reg == nil
	if own {
		reg = prometheus.NewRegistry()
	}
	m, err := newMetrics(reg, own, s.snapshotCount, s.lastSyncTime)
	if err != nil {
		return nil, err
	}
	s.met = m
	s.promH = promhttpHandler(reg)
	s.recorders.New = func() any { return new(recorder) }
	return s, nil
}

// Route names, the "route" label of the HTTP metrics.
const (
	routeSnapshot = iota
	routeChannel
	routeAPI
	routeKeys
	routeMetrics
	routeHealthz
	routeUI
	routeOther
	numRoutes
)

var routeNames = [numRoutes]string{"snapshot", "channel", "api", "keys", "metrics", "healthz", "ui", "other"}

func routeOf(p string) int {
	switch {
	case hasPrefix(p, "/snapshots/") || p == "/snapshots":
		return routeSnapshot
	case hasPrefix(p, "/channels/") || p == "/channels":
		return routeChannel
	case hasPrefix(p, "/api/") || p == "/api":
		return routeAPI
	case p == "/" || hasPrefix(p, "/ui/"):
		return routeUI
	case p == "/keys/mirrord.asc":
		return routeKeys
	case p == "/healthz":
		return routeHealthz
	case p == "/metrics":
		return routeMetrics
	}
	return routeOther
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rec := s.recorders.Get().(*recorder)
	rec.reset(w)
	route := routeOf(r.URL.Path)
	s.dispatch(rec, r, route)
	s.finish(rec, r, route, start)
	rec.reset(nil)
	s.recorders.Put(rec)
}

// maxUploadBody caps a request body outside the JSON API (the API caps
// its own at maxBody): git-upload-pack negotiations of the largest
// repositories stay far below it.
const maxUploadBody = 64 << 20

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, route int) {
	if msg := badPath(r); msg != "" {
		s.writeError(w, r, http.StatusBadRequest, "bad request path: "+msg)
		return
	}
	if r.ContentLength > maxUploadBody {
		s.writeError(w, r, http.StatusRequestEntityTooLarge, "request body larger than "+strconv.Itoa(maxUploadBody)+" bytes")
		return
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, maxUploadBody)
	}
	switch route {
	case routeSnapshot:
		s.serveSnapshots(w, r)
	case routeChannel:
		s.serveChannels(w, r)
	case routeAPI:
		s.serveAPI(w, r)
	case routeUI:
		s.serveUI(w, r)
	case routeKeys:
		if readMethod(w, r, s) {
			s.serveKey(w, r)
		}
	case routeHealthz:
		if readMethod(w, r, s) {
			s.serveHealthz(w, r)
		}
	case routeMetrics:
		if readMethod(w, r, s) {
			s.promH.ServeHTTP(w, r)
		}
	default:
		s.writeError(w, r, http.StatusNotFound, "not found: "+r.URL.Path)
	}
}

// readMethod answers 405 unless r is a GET or HEAD.
func readMethod(w http.ResponseWriter, r *http.Request, s *Server) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	s.writeError(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
	return false
}

func (s *Server) finish(rec *recorder, r *http.Request, route int, start time.Time) {
	d := time.Since(start)
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	s.met.observe(route, status, rec.bytes, d)
	ctx := r.Context()
	if status >= 500 {
		attrs := []slog.Attr{slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Int64("bytes", rec.bytes), slog.Duration("duration", d)}
		if rec.err != nil {
			attrs = append(attrs, slog.String("err", rec.err.Error()))
		}
		s.log.LogAttrs(ctx, slog.LevelError, "http request failed", attrs...)
	} else if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.LogAttrs(ctx, slog.LevelDebug, "http request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Int64("bytes", rec.bytes), slog.Duration("duration", d))
	}
}

// recorder records the status and body size of a response. It keeps the
// underlying writer's ReadFrom (sendfile) and Flush.
type recorder struct {
	w      http.ResponseWriter
	status int
	bytes  int64
	err    error // the cause of a 5xx, for the log
}

func (rc *recorder) reset(w http.ResponseWriter) { *rc = recorder{w: w} }

func (rc *recorder) Header() http.Header { return rc.w.Header() }

func (rc *recorder) WriteHeader(code int) {
	if rc.status == 0 && code >= 200 {
		rc.status = code
	}
	rc.w.WriteHeader(code)
}

func (rc *recorder) Write(b []byte) (int, error) {
	if rc.status == 0 {
		rc.status = http.StatusOK
	}
	n, err := rc.w.Write(b)
	rc.bytes += int64(n)
	return n, err
}

// ReadFrom lets io.Copy reach the connection's ReadFrom (sendfile).
func (rc *recorder) ReadFrom(src io.Reader) (int64, error) {
	if rc.status == 0 {
		rc.status = http.StatusOK
	}
	var n int64
	var err error
	if rf, ok := rc.w.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(src)
	} else {
		n, err = io.Copy(writerOnly{rc.w}, src)
	}
	rc.bytes += n
	return n, err
}

// Flush implements http.Flusher (git side-band progress needs it).
func (rc *recorder) Flush() {
	if rc.status == 0 {
		rc.status = http.StatusOK
	}
	if f, ok := rc.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (rc *recorder) Unwrap() http.ResponseWriter { return rc.w }

type writerOnly struct{ io.Writer }

// badPath returns why r's path is unsafe, or "".
func badPath(r *http.Request) string {
	p := r.URL.Path
	if p == "" || p[0] != '/' {
		return "path must start with /"
	}
	segStart := 1
	for i := 1; i <= len(p); i++ {
		if i < len(p) {
			c := p[i]
			if c == '\\' {
				return "backslash"
			}
			if c < 0x20 || c == 0x7f {
				return "control character"
			}
			if c != '/' {
				continue
			}
		}
		seg := p[segStart:i]
		switch {
		case seg == "" && i < len(p):
			return "empty path segment"
		case seg == "." || seg == "..":
			return "dot segment"
		}
		segStart = i + 1
	}
	if raw := r.URL.RawPath; raw != "" {
		for i := 0; i+2 < len(raw); i++ {
			if raw[i] != '%' {
				continue
			}
			switch {
			case raw[i+1] == '2' && (raw[i+2] == 'f' || raw[i+2] == 'F'):
				return "encoded slash"
			case raw[i+1] == '5' && (raw[i+2] == 'c' || raw[i+2] == 'C'):
				return "encoded backslash"
			case raw[i+1] == '0' && raw[i+2] == '0':
				return "encoded NUL"
			}
		}
	}
	return ""
}

func (s *Server) snapshotCount() float64 {
	v, _ := s.view(context.Background())
	if v == nil {
		return 0
	}
	return float64(len(v.ids))
}

// lastSyncTime is the metric's value: read at scrape time from the
// catalog, so a sync run by the CLI counts too.
func (s *Server) lastSyncTime() float64 {
	ls, err := s.cat.LastSync(context.Background())
	if err != nil {
		return 0
	}
	return float64(ls.Time.UnixNano()) / 1e9
}

// SetToken replaces the bearer token write endpoints require ("" disables
// them), e.g. after a config reload. Safe for concurrent use.
func (s *Server) SetToken(token string) {
	if token == "" {
		s.token.Store(nil)
		return
	}
	sum := sha256.Sum256([]byte(token))
	s.token.Store(&sum)
}
