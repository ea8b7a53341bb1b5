package gitcache

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mirrord/mirrord/internal/snapshot"
)

// Smart HTTP protocol constants (git's http-protocol documentation).
const (
	uploadPack       = "git-upload-pack"
	receivePack      = "git-receive-pack"
	advertisementCT  = "application/x-git-upload-pack-advertisement"
	requestCT        = "application/x-git-upload-pack-request"
	resultCT         = "application/x-git-upload-pack-result"
	maxRequestBody   = 64 << 20 // decompressed; a fetch's wants and haves
	cacheImmutable   = "public, max-age=31536000, immutable"
	cacheNone        = "no-cache"
	readOnlyMessage  = "mirrord serves git read-only: push to the upstream repository instead\n"
	dumbHTTPMessage  = "mirrord serves git over smart HTTP only (any git since 1.6.6 uses it)\n"
	defaultMaxUpload = 4
	maxAdvCached     = 1024    // ref advertisements kept in memory
	maxAdvCacheSize  = 1 << 20 // larger advertisements are not kept
)

// HandlerOptions configures a Handler.
type HandlerOptions struct {
	// CacheDir holds the local bare repositories, CacheDir/NAME/repo.git
	// (Options.CacheDir); a missing one is built from the store.
	CacheDir string
	Git      string // C git binary; "" looks up "git" on $PATH
	Log      *slog.Logger
	// MaxUploads bounds concurrent upload-pack processes (each may use a
	// core while it compresses); 0 means max(4, 2×GOMAXPROCS). Requests
	// over the bound wait.
	MaxUploads int
	// NoPackCache disables caching full-clone responses.
	NoPackCache bool
	// Catalog and PublicURL serve .../git/repos.yaml (ReposFile); without
	// a Catalog that path is a 404.
	Catalog   *snapshot.Catalog
	PublicURL string
}

// Handler serves snapshots' git repositories over read-only smart HTTP
// (protocol v0/v1, stateless RPC) by running C git's upload-pack with
// GIT_NAMESPACE set to the snapshot's pin, so exactly the snapshot's refs
// are advertised and only objects reachable from them can be fetched. It
// implements server.KindServer and is safe for concurrent use.
//
// Protocol v2 is not offered: git's v2 fetch command (2.39) accepts any
// object id in the repository as a want, whatever the namespace, so a
// client asking for v2 (Git-Protocol: version=2) gets a v0 advertisement
// and continues in v0, where upload-pack refuses wants not reachable from
// the advertised refs.
type Handler struct {
	opt    HandlerOptions
	git    *gitCmd
	gitErr error
	log    *slog.Logger
	slots  chan struct{}

	advMu sync.Mutex
	adv   map[string][]byte // dir+"\x00"+pin → ref advertisement (immutable)
}

// NewHandler returns a handler for opt. A missing git binary is reported on
// each request (503), not here, so the rest of the server still runs.
func NewHandler(opt HandlerOptions) *Handler {
	h := &Handler{opt: opt, log: opt.Log, adv: map[string][]byte{}}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.git, h.gitErr = findGit(opt.Git)
	n := opt.MaxUploads
	if n <= 0 {
		n = max(defaultMaxUpload, 2*runtime.GOMAXPROCS(0))
	}
	h.slots = make(chan struct{}, n)
	return h
}

// target is one request's repository: the source record, its bare repo and
// the pin naming the snapshot's refs in it.
type target struct {
	name string // source name (the URL segment without ".git")
	dir  string // bare repository
	pin  string
}

// ServeSource implements server.KindServer for /snapshots/{ID}/git/{NAME}.git/{rest}
// and /channels/{C}/git/{NAME}.git/{rest}. Smart HTTP paths are served
// for NAME with or without ".git"; anything else under NAME.git is a 404
// (dumb HTTP), and under a plain NAME it falls back to tree serving.
func (h *Handler) ServeSource(w http.ResponseWriter, r *http.Request, rec *snapshot.Record, name, rest string, immutable bool) bool {
	if name == reposFilePath && rest == "" && h.opt.Catalog != nil {
		if _, ok := rec.Source(Kind + "/" + name); !ok { // not a repository named "repos.yaml"
			h.serveReposFile(w, r, rec, immutable)
			return true
		}
	}
	repoName, dotGit := strings.CutSuffix(name, ".git")
	smart := rest == "info/refs" || rest == uploadPack || rest == receivePack
	if !smart && !dotGit {
		return false
	}
	src, ok := rec.Source(Kind + "/" + repoName)
	if !ok && dotGit && smart {
		src, ok = rec.Source(Kind + "/" + name) // a repository named "x.git"
	}
	if !ok {
		httpError(w, http.StatusNotFound, "snapshot %s has no git repository %q", rec.ID, repoName)
		return true
	}
	switch {
	case rest == "info/refs":
		h.infoRefs(w, r, rec, src, immutable)
	case rest == uploadPack:
		h.uploadPack(w, r, rec, src)
	case rest == receivePack:
		httpError(w, http.StatusForbidden, "%s", readOnlyMessage)
	case rest == "" && readMethod(w, r):
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "git repository %s of snapshot %s (read-only): git clone <this URL>\n", repoName, rec.ID)
	case rest != "":
		httpError(w, http.StatusNotFound, "%s", dumbHTTPMessage)
	}
	return true
}

func readMethod(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	httpError(w, http.StatusMethodNotAllowed, "method %s not allowed", r.Method)
	return false
}

// httpError answers with a plain-text message, which git shows its user
// as "remote: ...".
func httpError(w http.ResponseWriter, code int, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !strings.HasSuffix(msg, "\n") {
		msg += "\n"
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg)
}

// resolve finds the bare repository and pin of src, answering the request
// itself (and returning false) when they are unusable.
func (h *Handler) resolve(ctx context.Context, w http.ResponseWriter, rec *snapshot.Record, src *snapshot.SourceRecord) (target, bool) {
	t := target{name: src.Name, dir: filepath.Join(h.opt.CacheDir, src.Name, repoDirName), pin: src.Meta[metaPin]}
	switch {
	case h.gitErr != nil:
		h.log.Error("cannot serve git", "err", h.gitErr)
		httpError(w, http.StatusServiceUnavailable, "this mirrord cannot serve git: %v", h.gitErr)
		return t, false
	case !validPin(t.pin):
		httpError(w, http.StatusInternalServerError, "snapshot %s: git/%s has no valid pin in its record", rec.ID, src.Name)
		return t, false
	}
	if err := h.ensure(ctx, t, src); err != nil {
		h.log.Error("git repository unavailable", "snapshot", rec.ID, "source", src.Key(), "dir", t.dir, "pin", t.pin, "err", err)
		code := http.StatusInternalServerError
		if errors.Is(err, errFromStore) && !errors.Is(err, errCorruptBlob) {
			code = http.StatusServiceUnavailable // the store may come back
		}
		httpError(w, code, "snapshot %s: git/%s: %v", rec.ID, src.Name, err)
		return t, false
	}
	return t, true
}

// ensure makes t's repository hold src's refs: already there (a
// namespace's HEAD is a symbolic ref, never packed, written last), or
// built from the snapshot's pack chain in the store on first request.
func (h *Handler) ensure(ctx context.Context, t target, src *snapshot.SourceRecord) error {
	head := filepath.Join(t.dir, namespacePrefix(t.pin), "HEAD")
	if _, err := os.Stat(head); err == nil {
		return nil
	}
	if h.opt.Catalog == nil {
		return fmt.Errorf("the refs (pin %s) are missing from %s and this server has no store to build them from", t.pin, t.dir)
	}
	tree, err := h.opt.Catalog.Tree(ctx, src.Tree)
	if err != nil {
		return fmt.Errorf("%w: reading the tree: %w", errFromStore, err)
	}
	chain := chainOf(tree.Entries)
	if len(chain) == 0 {
		return fmt.Errorf("the snapshot keeps no packs (made before mirrord stored git objects in the store) and its refs (pin %s) are missing from %s; sync again", t.pin, t.dir)
	}
	m, err := openMirror(filepath.Dir(t.dir), h.git)
	if err != nil {
		return err
	}
	start := time.Now()
	if err := m.hydrate(ctx, h.opt.Catalog.Store().Blobs(), RefSetOf(src.Refs), chain); err != nil {
		return fmt.Errorf("%w: %w", errFromStore, err)
	}
	h.log.Info("git repository built from the store", "source", src.Key(), "pin", t.pin, "packs", len(chain), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (h *Handler) infoRefs(w http.ResponseWriter, r *http.Request, rec *snapshot.Record, src *snapshot.SourceRecord, immutable bool) {
	if !readMethod(w, r) {
		return
	}
	switch svc := r.URL.Query().Get("service"); svc {
	case uploadPack:
	case receivePack:
		httpError(w, http.StatusForbidden, "%s", readOnlyMessage)
		return
	case "":
		httpError(w, http.StatusNotFound, "%s", dumbHTTPMessage)
		return
	default:
		httpError(w, http.StatusForbidden, "unsupported service %q", svc)
		return
	}
	t, ok := h.resolve(r.Context(), w, rec, src)
	if !ok {
		return
	}
	adv, err := h.advertisement(r.Context(), t)
	if err != nil {
		h.log.Error("git ref advertisement failed", "source", src.Key(), "pin", t.pin, "err", err)
		httpError(w, http.StatusInternalServerError, "git/%s: advertising refs failed", t.name)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", advertisementCT)
	hdr.Set("Cache-Control", cacheNone)
	if immutable {
		hdr.Set("Cache-Control", cacheImmutable)
	}
	var b bytes.Buffer
	b.Write(pktLine("# service=" + uploadPack + "\n"))
	b.WriteString("0000")
	b.Write(adv)
	hdr.Set("Content-Length", fmt.Sprint(b.Len()))
	w.Write(b.Bytes())
}

// uploadPackArgs is the upload-pack command line for t. Wants of any commit
// reachable from the snapshot's refs are allowed (a deploy pinned to a
// commit id can fetch it); reachability is computed from the namespace's
// refs only, so nothing outside the snapshot is. Partial clones (--filter)
// are allowed too.
func uploadPackArgs(t target, extra ...string) []string {
	args := []string{"-c", "uploadpack.allowReachableSHA1InWant=true", "-c", "uploadpack.allowFilter=true",
		"upload-pack", "--stateless-rpc"}
	return append(append(args, extra...), t.dir)
}

// advertisement returns upload-pack's ref advertisement for t. A pin's refs
// never change, so it is computed once and kept (bounded) in memory.
func (h *Handler) advertisement(ctx context.Context, t target) ([]byte, error) {
	key := t.dir + "\x00" + t.pin
	h.advMu.Lock()
	adv, ok := h.adv[key]
	h.advMu.Unlock()
	if ok {
		return adv, nil
	}
	adv, err := h.git.run(ctx, nil, t.env(), uploadPackArgs(t, "--advertise-refs")...)
	if err != nil || len(adv) > maxAdvCacheSize {
		return adv, err
	}
	h.advMu.Lock()
	defer h.advMu.Unlock()
	for k := range h.adv {
		if len(h.adv) < maxAdvCached {
			break
		}
		delete(h.adv, k) // an arbitrary one: map order
	}
	h.adv[key] = adv
	return adv, nil
}

// env is the environment upload-pack runs in for t. GIT_PROTOCOL is
// deliberately absent (see Handler).
func (t target) env() []string { return []string{"GIT_NAMESPACE=" + t.pin} }

func pktLine(s string) []byte { return fmt.Appendf(nil, "%04x%s", len(s)+4, s) }

func (h *Handler) uploadPack(w http.ResponseWriter, r *http.Request, rec *snapshot.Record, src *snapshot.SourceRecord) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		httpError(w, http.StatusMethodNotAllowed, "method %s not allowed: %s takes a POST", r.Method, uploadPack)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != requestCT {
		httpError(w, http.StatusUnsupportedMediaType, "Content-Type %q: want %s", ct, requestCT)
		return
	}
	body, err := readRequest(r)
	if err != nil {
		httpError(w, http.StatusBadRequest, "reading the request: %v", err)
		return
	}
	t, ok := h.resolve(r.Context(), w, rec, src)
	if !ok {
		return
	}
	release, err := h.acquire(r.Context())
	if err != nil {
		return // the client went away while waiting
	}
	defer release()
	w.Header().Set("Content-Type", resultCT)
	w.Header().Set("Cache-Control", cacheNone)
	key, full := fullCloneKey(body)
	if !full || h.opt.NoPackCache {
		h.runUploadPack(r.Context(), w, t, body, nil)
		return
	}
	h.serveCached(w, r, t, key, body)
}

func (h *Handler) acquire(ctx context.Context) (func(), error) {
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// readRequest reads the whole request body, gunzipping it when the client
// compressed it, up to maxRequestBody bytes.
func readRequest(r *http.Request) ([]byte, error) {
	var body io.Reader = r.Body
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return nil, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		body = zr
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q", enc)
	}
	data, err := io.ReadAll(io.LimitReader(body, maxRequestBody+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxRequestBody {
		return nil, fmt.Errorf("request larger than %d bytes", maxRequestBody)
	}
	return data, nil
}

// runUploadPack runs `git upload-pack --stateless-rpc` on body and streams
// its output to w, flushing as it goes so side-band progress reaches the
// client live; a copy goes to tee when set (tee's errors are its own
// business). Once output has started a failure can only be logged: git
// reports it to the client in-band.
func (h *Handler) runUploadPack(ctx context.Context, w http.ResponseWriter, t target, body []byte, tee io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := h.git.command(ctx, t.env(), uploadPackArgs(t)...)
	cmd.Stdin = bytes.NewReader(body)
	stderr := &tailBuffer{max: 2048}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		h.log.Error("starting git upload-pack", "err", err)
		httpError(w, http.StatusInternalServerError, "git/%s: starting upload-pack failed", t.name)
		return err
	}
	copyErr := copyFlushing(w, out, tee)
	if copyErr != nil {
		cancel() // the client is gone: stop upload-pack and pack-objects
	}
	err = cmd.Wait()
	if copyErr != nil {
		err = copyErr
	}
	if err != nil {
		level := slog.LevelWarn
		if copyErr != nil || ctx.Err() != nil || strings.Contains(stderr.String(), "not our ref") {
			level = slog.LevelInfo // the client's doing: it left, or asked for what it may not have
		}
		h.log.Log(ctx, level, "git upload-pack ended early", "source", "git/"+t.name, "pin", t.pin, "err", err, "stderr", strings.TrimSpace(stderr.String()))
	}
	return err
}

// copyFlushing copies src to w (and tee), flushing w after every read.
func copyFlushing(w http.ResponseWriter, src io.Reader, tee io.Writer) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 64<<10)
	for {
		n, rerr := src.Read(buf)
		if n > 0 {
			if tee != nil {
				tee.Write(buf[:n])
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
				return err
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// errFromStore marks a failure to build a repository from the store.
var errFromStore = errors.New("building the repository from the store")

// serveReposFile answers .../git/repos.yaml: the snapshot's repos.yaml with
// sources on this mirror, under the request's /snapshots/ID or
// /channels/C prefix.
func (h *Handler) serveReposFile(w http.ResponseWriter, r *http.Request, rec *snapshot.Record, immutable bool) {
	if !readMethod(w, r) {
		return
	}
	prefix, ok := strings.CutSuffix(r.URL.Path, "/"+Kind+"/"+reposFilePath)
	if !ok {
		httpError(w, http.StatusNotFound, "no such file")
		return
	}
	out, _, err := ReposFile(r.Context(), h.opt.Catalog, rec, h.opt.PublicURL+prefix)
	if errors.Is(err, ErrNoReposFile) {
		httpError(w, http.StatusNotFound, "%v", err)
		return
	}
	if err != nil {
		h.log.Error("serving repos.yaml", "snapshot", rec.ID, "err", err)
		httpError(w, http.StatusInternalServerError, "%v", err)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "application/yaml; charset=utf-8")
	hdr.Set("Cache-Control", cacheNone)
	if immutable {
		hdr.Set("Cache-Control", cacheImmutable)
	}
	hdr.Set("Content-Length", fmt.Sprint(len(out)))
	if r.Method != http.MethodHead {
		w.Write(out)
	}
}
