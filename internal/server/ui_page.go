package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/mirrord/mirrord/internal/bytesize"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/web"
)

// UIOptions are what the web UI shows beyond the catalog. Every field is
// optional; the UI leaves out what is not given.
type UIOptions struct {
	// ClientConfig returns the client configuration (sources.list,
	// .repo, git insteadOf, file URLs) of the configured sources among
	// sources ("KIND/NAME") for clients of a tree root such as
	// "/snapshots/ID" or "/channels/C" (a path; the function makes it a
	// URL).
	ClientConfig func(root string, sources []string) string
	// Replicas lists the healthy replicas (from Consul). nil: Consul is
	// not configured.
	Replicas func(ctx context.Context) ([]Replica, error)
	// Compare orders two versions of an item of a source kind ("apt" →
	// Debian version order), so the diff tells upgrades from downgrades.
	// Kinds without one show "changed".
	Compare map[string]func(a, b string) int
	// KeyFingerprint is mirrord's signing key fingerprint.
	KeyFingerprint string
	// Replica names this server in channel moves made through its API
	// (Move.By); default the host name.
	Replica string
}

// Replica is one serving replica as the overview lists it.
type Replica struct {
	ID, Node, URL, Latest string
	Channels              []string
}

// page is what every UI page's layout needs.
type page struct {
	Title, Version, Asset, Query string
	SyncID                       int
}

func (s *Server) page(title string) page {
	return page{Title: title, Version: s.opt.Version, Asset: s.asset}
}

// Pages are paged so none gets large: 1,000 snapshots or 65,000 packages
// render at these sizes per page (well under 1 MB of HTML).
const (
	snapshotsPerPage = 25
	itemsPerPage     = 200
	movesPerPage     = 50
	diffRowsMax      = 500 // per source; the JSON diff has the rest
)

type pager struct{ Prev, Next, Label string }

// paginate picks page ?page=N (1-based) of n rows.
func paginate(r *http.Request, n, per int) (lo, hi int, p pager) {
	pages := max(1, (n+per-1)/per)
	cur, _ := strconv.Atoi(r.URL.Query().Get("page"))
	cur = min(max(cur, 1), pages)
	lo, hi = (cur-1)*per, min(cur*per, n)
	link := func(pg int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(pg))
		return "?" + q.Encode()
	}
	if cur > 1 {
		p.Prev = link(cur - 1)
	}
	if cur < pages {
		p.Next = link(cur + 1)
	}
	p.Label = "page " + strconv.Itoa(cur) + " of " + strconv.Itoa(pages)
	return lo, hi, p
}

// serveUI routes / and /ui/...
func (s *Server) serveUI(w http.ResponseWriter, r *http.Request) {
	if !readMethod(w, r, s) {
		return
	}
	p := r.URL.Path
	if p == "/" {
		s.uiOverview(w, r)
		return
	}
	rest := strings.TrimPrefix(p, "/ui/")
	head, tail, _ := strings.Cut(rest, "/")
	switch {
	case head == "static" && tail != "":
		s.uiStatic(w, r, tail)
	case head == "snapshots" && tail != "" && !strings.Contains(tail, "/"):
		s.uiSnapshot(w, r, tail)
	case head == "diff" && tail == "":
		s.uiPickDiff(w, r)
	case head == "diff" && strings.Count(tail, "/") == 1:
		a, b, _ := strings.Cut(tail, "/")
		s.uiDiff(w, r, a, b)
	case head == "channels" && tail == "":
		s.uiPickChannel(w, r)
	case head == "channels" && tail != "" && !strings.Contains(tail, "/"):
		s.uiChannel(w, r, tail)
	case head == "syncs" && tail != "" && !strings.Contains(tail, "/"):
		s.uiSync(w, r, tail)
	case head == "search" && tail == "":
		s.uiSearch(w, r)
	default:
		s.uiError(w, r, errorf(http.StatusNotFound, "no such page: %s (try / for the overview)", p))
	}
}

// uiError renders err as an HTML page with its status.
func (s *Server) uiError(w http.ResponseWriter, r *http.Request, err error) {
	code := statusOf(err)
	if rc, ok := w.(*recorder); ok && code >= 500 {
		rc.err = err
	}
	data := struct {
		page
		Err string
	}{s.page(http.StatusText(code)), err.Error()}
	s.renderStatus(w, r, code, "error", data, hdrNoCache)
}

// assetHash is a short digest of the static files, put in their URLs so
// browsers may cache them for good.
func assetHash() string {
	h := sha256.New()
	fs.WalkDir(web.FS, "static", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(web.FS, p)
			h.Write([]byte(p))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

// uiStatic serves web/static/NAME: immutable when the URL names the
// current asset hash, revalidated otherwise.
func (s *Server) uiStatic(w http.ResponseWriter, r *http.Request, name string) {
	b, err := fs.ReadFile(web.FS, path.Join("static", name))
	if err != nil || strings.Contains(name, "/") {
		s.uiError(w, r, errorf(http.StatusNotFound, "no such file: %s", r.URL.Path))
		return
	}
	h := w.Header()
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Etag", `"`+s.asset+`"`)
	if r.URL.Query().Get("v") == s.asset {
		h["Cache-Control"] = hdrImmutable
	} else {
		h["Cache-Control"] = hdrNoCache
	}
	http.ServeContent(w, r, "", s.started, strings.NewReader(string(b)))
}

// srcChip is one source in a snapshot row.
type srcChip struct {
	Key, Href, Size, Count string
	Files                  int
}

func plural(n int, one string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + one + "s"
}

// kindNoun is what a source kind's items are called.
func kindNoun(kind string) string {
	switch kind {
	case "apt", "yum":
		return "package"
	case "git":
		return "ref"
	}
	return "file"
}

func itemCount(src *snapshot.SourceRecord) int {
	if src.Items == "" && src.NItems == 0 {
		return src.Files
	}
	return src.NItems
}

func chips(rec *snapshot.Record) []srcChip {
	out := make([]srcChip, 0, len(rec.Sources))
	for i := range rec.Sources {
		src := &rec.Sources[i]
		out = append(out, srcChip{
			Key: src.Key(), Href: "/ui/snapshots/" + rec.ID + "?source=" + url.QueryEscape(src.Key()) + "#items",
			Size: bytesize.Format(src.Size), Count: plural(itemCount(src), kindNoun(src.Kind)), Files: src.Files,
		})
	}
	return out
}

// renderStatus is render with a status code.
func (s *Server) renderStatus(w http.ResponseWriter, r *http.Request, code int, name string, data any, cc []string) {
	if code == http.StatusOK {
		s.render(w, r, name, data, cc)
		return
	}
	var buf strings.Builder
	if err := s.tmpl.ExecuteTemplate(&buf, name, data); err != nil {
		s.writeErr(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h["Content-Security-Policy"] = hdrCSP
	h["Cache-Control"] = cc
	w.WriteHeader(code)
	w.Write([]byte(buf.String()))
}

// errNoSyncs is what sync pages say on a server that runs none.
var errNoSyncs = errors.New("this server runs no syncs (no sources configured)")
