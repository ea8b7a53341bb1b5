package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// Shared header values. Header maps may share these slices: each has
// len == cap, so an Add reallocates instead of writing into them.
var (
	hdrImmutable = []string{"public, max-age=31536000, immutable"}
	hdrNoCache   = []string{"no-cache"}
	hdrNoSniff   = []string{"nosniff"}
	hdrListing   = []string{"public, max-age=300"}
	hdrBytes     = []string{"bytes"}
)

// serveSnapshots answers /snapshots/...
func (s *Server) serveSnapshots(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/snapshots" {
		s.redirect(w, r, "/snapshots/", http.StatusMovedPermanently)
		return
	}
	rest := p[len("/snapshots/"):]
	if rest == "" {
		if readMethod(w, r, s) {
			s.listSnapshots(w, r)
		}
		return
	}
	id, sub, slash := strings.Cut(rest, "/")
	ctx := r.Context()
	v, err := s.view(ctx)
	if v == nil {
		s.writeErr(w, r, err)
		return
	}
	if !v.has(id) {
		t, err := snapshot.ParseID(id)
		if err != nil {
			s.writeError(w, r, http.StatusBadRequest, "bad snapshot ID "+quote(id)+": want UTC YYYYMMDDTHHMMSSZ")
			return
		}
		target := v.atOrBefore(id)
		if target == "" || id > v.latest() {
			// Perhaps a snapshot newer than the view: ask the catalog.
			if target, err = s.cat.AtOrBefore(ctx, t); err != nil {
				s.writeErr(w, r, err)
				return
			}
		}
		if target != id {
			// Keep the rest of the path as the client wrote it.
			esc := r.URL.EscapedPath()
			tail := ""
			if i := strings.IndexByte(esc[len("/snapshots/"):], '/'); i >= 0 {
				tail = esc[len("/snapshots/")+i:]
			}
			w.Header()["Cache-Control"] = hdrNoCache
			s.redirect(w, r, "/snapshots/"+target+tail, http.StatusFound)
			return
		}
		// It exists, but the view is older than the snapshot.
	}
	if !slash {
		s.slashRedirect(w, r)
		return
	}
	ri, err := s.recInfo(ctx, id)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.serveIn(w, r, ri, sub, true)
}

// serveChannels answers /channels/...
func (s *Server) serveChannels(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if p == "/channels" {
		s.redirect(w, r, "/channels/", http.StatusMovedPermanently)
		return
	}
	rest := p[len("/channels/"):]
	ctx := r.Context()
	v, err := s.view(ctx)
	if v == nil {
		s.writeErr(w, r, err)
		return
	}
	if rest == "" {
		if readMethod(w, r, s) {
			s.listChannels(w, r, v)
		}
		return
	}
	name, sub, slash := strings.Cut(rest, "/")
	ch := v.chans[name]
	if ch == nil {
		s.writeError(w, r, http.StatusNotFound, "unknown channel "+quote(name))
		return
	}
	if !slash {
		s.slashRedirect(w, r)
		return
	}
	ri, err := s.recInfo(ctx, ch.Snapshot)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	s.serveIn(w, r, ri, sub, false)
}

// serveIn serves sub, the path below /snapshots/{ID}/ or
// /channels/{CHANNEL}/, from rec.
func (s *Server) serveIn(w http.ResponseWriter, r *http.Request, ri *recInfo, sub string, immutable bool) {
	rec := ri.rec
	if !immutable {
		// What a channel URL names changes with the channel, redirects
		// included.
		w.Header()["Cache-Control"] = hdrNoCache
	}
	if sub == "" {
		if readMethod(w, r, s) {
			s.listSources(w, r, rec, "", immutable)
		}
		return
	}
	kind, sub, slash := strings.Cut(sub, "/")
	if !slash && kind == "bootstrap.sh" && s.opt.Bootstrap != nil {
		s.serveBootstrap(w, r, rec)
		return
	}
	if !slash {
		if !hasKind(rec, kind) {
			s.writeError(w, r, http.StatusNotFound, "snapshot "+rec.ID+" has no "+quote(kind)+" sources")
			return
		}
		s.slashRedirect(w, r)
		return
	}
	if sub == "" {
		if readMethod(w, r, s) {
			s.listSources(w, r, rec, kind, immutable)
		}
		return
	}
	name, fpath, slash := strings.Cut(sub, "/")
	if ks := s.opt.Kinds[kind]; ks != nil {
		if ks.ServeSource(w, r, rec, name, fpath, immutable) {
			return
		}
	}
	if !readMethod(w, r, s) {
		return
	}
	src := findSource(rec, kind, name)
	if src == nil {
		s.writeError(w, r, http.StatusNotFound, "snapshot "+rec.ID+" has no source "+quote(kind+"/"+name))
		return
	}
	if !slash {
		s.slashRedirect(w, r)
		return
	}
	ctx := r.Context()
	tree, err := s.cat.Tree(ctx, src.Tree)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	if fpath == "" {
		s.listDir(w, r, rec, tree, "", immutable)
		return
	}
	if dir, ok := strings.CutSuffix(fpath, "/"); ok {
		if tree.IsDir(dir) {
			s.listDir(w, r, rec, tree, dir, immutable)
			return
		}
		s.writeError(w, r, http.StatusNotFound, "no directory "+quote(fpath)+" in "+kind+"/"+name)
		return
	}
	if e, ok := tree.Lookup(fpath); ok {
		s.serveBlob(w, r, e.Digest, e.Size, fpath, ri, immutable)
		return
	}
	if tree.IsDir(fpath) {
		s.slashRedirect(w, r)
		return
	}
	if pd, ok := s.opt.Kinds[kind].(PathDigester); ok {
		if d, ok := pd.PathDigest(fpath); ok {
			if info, err := s.blobs.Stat(ctx, d); err == nil {
				s.serveBlob(w, r, d, info.Size, fpath, ri, immutable)
				return
			} else if !errors.Is(err, store.ErrNotFound) {
				s.writeErr(w, r, err)
				return
			}
		}
	}
	s.writeError(w, r, http.StatusNotFound, "no file "+quote(fpath)+" in "+kind+"/"+name+" of snapshot "+rec.ID)
}

// serveBootstrap answers .../bootstrap.sh with Options.Bootstrap's script.
// It is never cached: it names the mirror's current configuration.
func (s *Server) serveBootstrap(w http.ResponseWriter, r *http.Request, rec *snapshot.Record) {
	if !readMethod(w, r, s) {
		return
	}
	body, err := s.opt.Bootstrap(r.Context(), rec, strings.TrimSuffix(r.URL.Path, "/bootstrap.sh"))
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	h := w.Header()
	h["Cache-Control"] = hdrNoCache
	h.Set("Content-Type", "text/x-shellscript; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method != http.MethodHead {
		w.Write(body)
	}
}

func hasKind(rec *snapshot.Record, kind string) bool {
	for i := range rec.Sources {
		if rec.Sources[i].Kind == kind {
			return true
		}
	}
	return false
}

// serveBlob serves blob d (size bytes) with ETag, Last-Modified, caching
// headers, Range and conditional requests.
func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request, d store.Digest, size int64, name string, ri *recInfo, immutable bool) {
	h := w.Header()
	if immutable {
		h["Cache-Control"] = hdrImmutable
	} else {
		h["Cache-Control"] = hdrNoCache
	}
	h["Content-Type"] = contentType(name)
	h["X-Content-Type-Options"] = hdrNoSniff
	ctx := r.Context()
	if s.opt.Presign != nil && r.Method == http.MethodGet {
		s.presignRedirect(w, r, d)
		return
	}
	plain := plainRequest(r)
	if size <= s.cache.maxItem {
		cb, err := s.smallBlob(ctx, d, size)
		if err != nil {
			s.blobErr(w, r, d, err)
			return
		}
		h["Etag"] = cb.etag
		// Hide ReadFrom: one buffered write of headers and body beats
		// ReadFrom's split writes for small bodies.
		if rc, ok := w.(*recorder); ok {
			w = (*plainRecorder)(rc)
		} else {
			w = plainWriter{w}
		}
		if plain {
			h["Last-Modified"] = ri.lastMod
			h["Accept-Ranges"] = hdrBytes
			h["Content-Length"] = cb.length
			w.WriteHeader(http.StatusOK)
			if r.Method != http.MethodHead {
				w.Write(cb.data)
			}
			return
		}
		http.ServeContent(w, r, "", ri.rec.Created, bytes.NewReader(cb.data))
		return
	}
	h["Etag"] = []string{`"` + string(d) + `"`}
	content, closer, err := s.openBlob(ctx, d)
	if err != nil {
		s.blobErr(w, r, d, err)
		return
	}
	defer closer.Close()
	if !plain {
		http.ServeContent(w, r, "", ri.rec.Created, content)
		return
	}
	h["Last-Modified"] = ri.lastMod
	h["Accept-Ranges"] = hdrBytes
	h["Content-Length"] = []string{strconv.FormatInt(size, 10)}
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	// Through the recorder's ReadFrom to the connection's: sendfile when
	// content is an *os.File.
	if n, err := io.CopyN(w, content, size); errors.Is(err, io.EOF) {
		// The blob is shorter than its tree entry: abort the response
		// rather than end it short. (Other errors: the client left.)
		s.log.Error("blob shorter than its tree entry", "digest", d, "size", size, "sent", n)
		panic(http.ErrAbortHandler)
	}
}

// plainRequest reports whether r is a GET or HEAD without Range or
// conditional headers, which the fast path answers without ServeContent.
func plainRequest(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	h := r.Header
	for _, k := range conditionalHeaders {
		if _, ok := h[k]; ok {
			return false
		}
	}
	return true
}

var conditionalHeaders = []string{"Range", "If-None-Match", "If-Modified-Since", "If-Match", "If-Unmodified-Since", "If-Range"}

// fileOpener is the optional capability of a remote store's read cache
// (store/readcache): a local file for blob d, fetched on a miss; ok is false
// when the blob is not cacheable.
type fileOpener interface {
	OpenFile(ctx context.Context, d store.Digest) (f *os.File, ok bool, err error)
}

// presignRedirect answers a blob GET with a 302 to a presigned URL, or 304
// when the client has the blob already (the ETag is the digest).
func (s *Server) presignRedirect(w http.ResponseWriter, r *http.Request, d store.Digest) {
	h := w.Header()
	etag := `"` + string(d) + `"`
	if inm := r.Header.Get("If-None-Match"); inm != "" && (inm == etag || inm == "*" || strings.Contains(inm, etag)) {
		h["Etag"] = []string{etag}
		w.WriteHeader(http.StatusNotModified)
		return
	}
	u, err := s.opt.Presign(r.Context(), d)
	if err != nil {
		s.blobErr(w, r, d, err)
		return
	}
	delete(h, "Content-Type")
	// The URL expires: caches may keep the redirect only briefly.
	h["Cache-Control"] = []string{"private, max-age=60"}
	h.Set("Location", u)
	w.WriteHeader(http.StatusFound)
}

// openBlob opens blob d for serving: an *os.File when the store has local
// files or a local read cache (so net/http can use sendfile), else the
// store's Blob.
func (s *Server) openBlob(ctx context.Context, d store.Digest) (io.ReadSeeker, io.Closer, error) {
	if s.files != nil {
		f, ok, err := s.files.OpenFile(ctx, d)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			return f, f, nil
		}
	}
	if s.filer != nil {
		if p := s.filer.BlobPath(d); p != "" {
			f, err := openFile(p)
			if err == nil {
				return f, f, nil
			}
			if !os.IsNotExist(err) {
				return nil, nil, err
			}
			// Let the store say what is wrong.
		}
	}
	b, err := s.blobs.Open(ctx, d)
	if err != nil {
		return nil, nil, err
	}
	if f, ok := b.(interface{ File() *os.File }); ok {
		return f.File(), b, nil
	}
	return b, b, nil
}

func (s *Server) blobErr(w http.ResponseWriter, r *http.Request, d store.Digest, err error) {
	h := w.Header()
	delete(h, "Etag")
	delete(h, "Cache-Control")
	delete(h, "Content-Type")
	if errors.Is(err, store.ErrNotFound) || os.IsNotExist(err) {
		// The tree names a blob the store lacks: a damaged store.
		s.writeError(w, r, http.StatusInternalServerError, "blob "+string(d)+" is missing from the store (run mirrord verify)")
		return
	}
	s.writeErr(w, r, err)
}

// smallBlob returns a small blob from the cache, loading it on a miss.
func (s *Server) smallBlob(ctx context.Context, d store.Digest, size int64) (*cachedBlob, error) {
	if cb := s.cache.get(d); cb != nil {
		return cb, nil
	}
	content, closer, err := s.openBlob(ctx, d)
	if err != nil {
		return nil, err
	}
	defer closer.Close()
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	if _, err := io.Copy(buf, io.LimitReader(content, s.cache.maxItem+1)); err != nil {
		return nil, err
	}
	data := buf.Bytes()
	cb := &cachedBlob{
		data:   data,
		etag:   []string{`"` + string(d) + `"`},
		length: []string{strconv.Itoa(len(data))},
	}
	if int64(len(data)) <= s.cache.maxItem {
		s.cache.put(d, cb)
	}
	return cb, nil
}

// plainRecorder is a recorder without ReadFrom (a pointer, so converting
// it to an interface does not allocate).
type plainRecorder recorder

func (p *plainRecorder) Header() http.Header         { return (*recorder)(p).Header() }
func (p *plainRecorder) Write(b []byte) (int, error) { return (*recorder)(p).Write(b) }
func (p *plainRecorder) WriteHeader(code int)        { (*recorder)(p).WriteHeader(code) }

// plainWriter hides a ResponseWriter's ReadFrom.
type plainWriter struct{ w http.ResponseWriter }

func (p plainWriter) Header() http.Header         { return p.w.Header() }
func (p plainWriter) Write(b []byte) (int, error) { return p.w.Write(b) }
func (p plainWriter) WriteHeader(code int)        { p.w.WriteHeader(code) }

// slashRedirect redirects a directory URL to its form with a trailing
// slash.
func (s *Server) slashRedirect(w http.ResponseWriter, r *http.Request) {
	s.redirect(w, r, r.URL.EscapedPath()+"/", http.StatusMovedPermanently)
}

// redirect answers with a redirect to loc (an absolute path), keeping the
// query string.
func (s *Server) redirect(w http.ResponseWriter, r *http.Request, loc string, code int) {
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	h := w.Header()
	h.Set("Location", loc)
	if code == http.StatusMovedPermanently && h.Get("Cache-Control") == "" {
		h.Set("Cache-Control", "public, max-age=3600")
	}
	h.Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if r.Method == http.MethodGet {
		io.WriteString(w, `<a href="`+htmlEscape(loc)+`">`+http.StatusText(code)+"</a>.\n")
	}
}

var mimeByExt = map[string][]string{
	".xml":     {"application/xml"},
	".gz":      {"application/gzip"},
	".tgz":     {"application/gzip"},
	".xz":      {"application/x-xz"},
	".bz2":     {"application/x-bzip2"},
	".zst":     {"application/zstd"},
	".lz4":     {"application/x-lz4"},
	".lzma":    {"application/x-lzma"},
	".zip":     {"application/zip"},
	".tar":     {"application/x-tar"},
	".deb":     {"application/vnd.debian.binary-package"},
	".udeb":    {"application/vnd.debian.binary-package"},
	".ddeb":    {"application/vnd.debian.binary-package"},
	".dsc":     {"text/plain; charset=utf-8"},
	".changes": {"text/plain; charset=utf-8"},
	".rpm":     {"application/x-rpm"},
	".asc":     {"application/pgp-signature"},
	".gpg":     {"application/pgp-signature"},
	".sig":     {"application/pgp-signature"},
	".json":    {"application/json"},
	".yaml":    {"application/yaml"},
	".yml":     {"application/yaml"},
	".txt":     {"text/plain; charset=utf-8"},
	".md":      {"text/plain; charset=utf-8"},
	".sha256":  {"text/plain; charset=utf-8"},
	".sqlite":  {"application/vnd.sqlite3"},
	".iso":     {"application/x-iso9660-image"},
	".qcow2":   {"application/octet-stream"},
	".img":     {"application/octet-stream"},
	".pem":     {"application/x-pem-file"},
}

var mimeByName = map[string][]string{
	"Release":    {"text/plain; charset=utf-8"},
	"InRelease":  {"text/plain; charset=utf-8"},
	"Packages":   {"text/plain; charset=utf-8"},
	"Sources":    {"text/plain; charset=utf-8"},
	"Index":      {"text/plain; charset=utf-8"},
	"SHA256SUMS": {"text/plain; charset=utf-8"},
	"MD5SUMS":    {"text/plain; charset=utf-8"},
}

var (
	hdrOctet = []string{"application/octet-stream"}
	hdrText  = []string{"text/plain; charset=utf-8"}
)

// contentType picks a Content-Type by file name. Mirrored HTML is served as
// octet-stream on purpose: upstream content must not run in our origin.
func contentType(p string) []string {
	base := p[strings.LastIndexByte(p, '/')+1:]
	if t, ok := mimeByName[base]; ok {
		return t
	}
	if hasPrefix(base, "Translation-") && strings.IndexByte(base, '.') < 0 {
		return hdrText
	}
	if i := strings.LastIndexByte(base, '.'); i >= 0 {
		if t, ok := mimeByExt[base[i:]]; ok {
			return t
		}
	}
	return hdrOctet
}
