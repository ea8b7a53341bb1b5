package server

import (
	"bytes"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mirrord/mirrord/internal/bytesize"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/web"
)

func parseTemplates() (*template.Template, error) {
	return template.New("").ParseFS(web.FS, "templates/*.html")
}

const timeLayout = "2006-01-02 15:04:05"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

type dirEntry struct {
	Name, Href, Modified, Size string
	Extra                      []string
}

type dirPage struct {
	Path       string
	Note       string
	Parent     bool
	Entries    []dirEntry
	HasExtra   bool
	ExtraTitle string
	Version    string
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, name string, data any, cacheControl []string) {
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		s.writeErr(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h["Content-Security-Policy"] = hdrCSP
	h["Cache-Control"] = cacheControl
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// hdrCSP lets pages load only this server's own assets and talk only to
// it, and forbids framing (no clickjacking of the promote button).
var hdrCSP = []string{"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"}

func listingCache(immutable bool) []string {
	if immutable {
		return hdrListing
	}
	return hdrNoCache
}

// href is a safe relative link to name (a dir when it ends in "/").
func href(name string) string {
	dir := strings.HasSuffix(name, "/")
	h := "./" + url.PathEscape(strings.TrimSuffix(name, "/"))
	if dir {
		h += "/"
	}
	return h
}

// listSnapshots renders /snapshots/.
func (s *Server) listSnapshots(w http.ResponseWriter, r *http.Request) {
	v, err := s.view(r.Context())
	if v == nil {
		s.writeErr(w, r, err)
		return
	}
	recs, err := s.records(r.Context(), v.ids)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	page := dirPage{Path: "/snapshots/", Parent: true, HasExtra: true, ExtraTitle: "Channels", Version: s.opt.Version}
	for i := len(recs) - 1; i >= 0; i-- {
		rec := recs[i]
		page.Entries = append(page.Entries, dirEntry{Name: rec.ID + "/", Href: href(rec.ID + "/"), Modified: fmtTime(rec.Created),
			Size: bytesize.Format(rec.Size()), Extra: v.channelsOf(rec.ID)})
	}
	s.render(w, r, "dir", page, hdrNoCache)
}

// listChannels renders /channels/.
func (s *Server) listChannels(w http.ResponseWriter, r *http.Request, v *view) {
	page := dirPage{Path: "/channels/", Parent: true, HasExtra: true, ExtraTitle: "Snapshot", Version: s.opt.Version}
	for _, ch := range v.chanList {
		cs := ch.Summarize()
		page.Entries = append(page.Entries, dirEntry{Name: ch.Name + "/", Href: href(ch.Name + "/"), Modified: fmtTime(cs.Updated), Size: "-", Extra: []string{ch.Snapshot}})
	}
	s.render(w, r, "dir", page, hdrNoCache)
}

// listSources renders /snapshots/{ID}/ (kind "") or /snapshots/{ID}/{KIND}/.
func (s *Server) listSources(w http.ResponseWriter, r *http.Request, rec *snapshot.Record, kind string, immutable bool) {
	page := dirPage{Path: r.URL.Path, Parent: true, Version: s.opt.Version}
	if !immutable {
		page.Note = "Channel view: currently snapshot " + rec.ID + "."
	}
	for _, src := range rec.Sources {
		if kind != "" && src.Kind != kind {
			continue
		}
		name := src.Kind + "/" + src.Name + "/"
		h := "./" + url.PathEscape(src.Kind) + "/" + url.PathEscape(src.Name) + "/"
		if kind != "" {
			name = src.Name + "/"
			h = href(name)
		}
		page.Entries = append(page.Entries, dirEntry{Name: name, Href: h, Modified: fmtTime(src.Synced),
			Size: bytesize.Format(src.Size)})
	}
	if kind != "" && len(page.Entries) == 0 {
		s.writeError(w, r, http.StatusNotFound, "snapshot "+rec.ID+" has no "+quote(kind)+" sources")
		return
	}
	s.render(w, r, "dir", page, listingCache(immutable))
}

// listDir renders a directory of a source's tree, like nginx's autoindex.
func (s *Server) listDir(w http.ResponseWriter, r *http.Request, rec *snapshot.Record, t *snapshot.Tree, dir string, immutable bool) {
	page := dirPage{Path: r.URL.Path, Parent: true, Version: s.opt.Version}
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	mod := fmtTime(rec.Created)
	for _, name := range t.List(dir) {
		e := dirEntry{Name: name, Href: href(name), Modified: mod, Size: "-"}
		if !strings.HasSuffix(name, "/") {
			if ent, ok := t.Lookup(prefix + name); ok {
				e.Size = strconv.FormatInt(ent.Size, 10)
			}
		}
		page.Entries = append(page.Entries, e)
	}
	s.render(w, r, "dir", page, listingCache(immutable))
}

// serveKey answers /keys/mirrord.asc.
func (s *Server) serveKey(w http.ResponseWriter, r *http.Request) {
	key, etag := s.opt.PublicKey, s.keyETag
	if key == nil && s.opt.PublicKeyFunc != nil {
		k, err := s.opt.PublicKeyFunc(r.Context())
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		key, etag = k, `"`+string(store.DigestOf(k))+`"`
	}
	if key == nil {
		s.writeError(w, r, http.StatusNotFound, "this server has no signing key configured (the store names none yet: the first sync that signs records one)")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/pgp-keys")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Etag", etag)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(key))
}

type health struct {
	Status         string `json:"status"`
	LatestSnapshot string `json:"latest_snapshot"`
	Snapshots      int    `json:"snapshots"`
	Version        string `json:"version,omitempty"`
	Error          string `json:"error,omitempty"`
}

// serveHealthz answers /healthz: 200 while the store is readable.
func (s *Server) serveHealthz(w http.ResponseWriter, r *http.Request) {
	v, err := s.view(r.Context())
	hl := health{Status: "ok", Version: s.opt.Version}
	if v != nil {
		hl.LatestSnapshot, hl.Snapshots = v.latest(), len(v.ids)
	}
	code := http.StatusOK
	if err != nil {
		hl.Status, hl.Error, code = "error", err.Error(), http.StatusServiceUnavailable
	}
	writeJSON(w, code, hl)
}
