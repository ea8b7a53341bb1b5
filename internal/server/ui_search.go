package server

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mirrord/mirrord/internal/search"
	"github.com/mirrord/mirrord/internal/store"
)

// searchCache holds the loaded search index; it is reloaded when a newer
// snapshot exists than the index covers (at most every few seconds, since
// the index may lag: it is caught up by the next sync).
type searchCache struct {
	mu     sync.Mutex
	ix     *search.Index
	loaded time.Time
}

const searchReload = 3 * time.Second

func (s *Server) searchIndex(ctx context.Context, latest string) (*search.Index, error) {
	c := &s.search
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ix != nil && (c.ix.Last() >= latest || time.Since(c.loaded) < searchReload) {
		return c.ix, nil
	}
	ix, err := search.Load(ctx, s.cat.Store().Meta())
	if err != nil {
		return nil, err
	}
	c.ix, c.loaded = ix, time.Now()
	return ix, nil
}

// SearchResult is one version of a package in one source, and the
// snapshots (newest first) that have it.
type SearchResult struct {
	Source    string   `json:"source"`
	Name      string   `json:"name"` // as the source lists it: "openssl:amd64" (apt), "openssl.x86_64" (yum)
	Version   string   `json:"version"`
	Snapshots []string `json:"snapshots"`
}

// SearchAnswer is GET /api/v1/search.
type SearchAnswer struct {
	Package string         `json:"package"`
	Version string         `json:"version,omitempty"`
	Results []SearchResult `json:"results"`
	// IndexedThrough is the newest snapshot the index covers; newer
	// ones are indexed by the next sync.
	IndexedThrough string `json:"indexed_through"`
	NotIndexed     int    `json:"not_indexed,omitempty"` // snapshots newer than IndexedThrough
}

// find answers a search: index postings → item lists → the snapshots
// whose records name those lists (records are cached in memory; no item
// list is read).
func (s *Server) find(ctx context.Context, name, version string) (*SearchAnswer, error) {
	v, err := s.view(ctx)
	if v == nil {
		return nil, err
	}
	ix, err := s.searchIndex(ctx, v.latest())
	if err != nil {
		return nil, err
	}
	ans := &SearchAnswer{Package: name, Version: version, Results: []SearchResult{}, IndexedThrough: ix.Last()}
	posts := ix.Lookup(name, version)
	recs, err := s.records(ctx, v.ids)
	if err != nil {
		return nil, err
	}
	for _, p := range posts {
		lists := make(map[store.Digest]bool, len(p.Lists))
		for _, d := range p.Lists {
			lists[d] = true
		}
		res := SearchResult{Source: p.Source, Name: p.Name, Version: p.Version, Snapshots: []string{}}
		for i := len(recs) - 1; i >= 0; i-- {
			if src, ok := recs[i].Source(p.Source); ok && lists[src.Items] {
				res.Snapshots = append(res.Snapshots, recs[i].ID)
			}
		}
		if len(res.Snapshots) > 0 {
			ans.Results = append(ans.Results, res)
		}
	}
	for i := len(v.ids) - 1; i >= 0 && v.ids[i] > ans.IndexedThrough; i-- {
		ans.NotIndexed++
	}
	return ans, nil
}

func (s *Server) apiSearch(r *http.Request, _ []string) (int, any, error) {
	q := r.URL.Query()
	name := strings.TrimSpace(q.Get("package"))
	if name == "" {
		return 0, nil, errorf(http.StatusBadRequest, "give ?package=NAME (and optionally &version=V)")
	}
	ans, err := s.find(r.Context(), name, strings.TrimSpace(q.Get("version")))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ans, nil
}

type searchPage struct {
	page
	PkgVersion, Err, Indexed string
	NSnapshots               int
	Results                  []SearchResult
	Suggest                  []string
}

// uiSearch renders /ui/search?q=NAME[&version=V].
func (s *Server) uiSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	pg := searchPage{page: s.page("Search"), PkgVersion: strings.TrimSpace(q.Get("version"))}
	pg.Query = strings.TrimSpace(q.Get("q"))
	if pg.Query != "" {
		pg.Title = "Search " + pg.Query
		ans, err := s.find(r.Context(), pg.Query, pg.PkgVersion)
		if err != nil {
			pg.Err = err.Error()
		} else {
			pg.Results, pg.Indexed = ans.Results, ans.IndexedThrough
			seen := map[string]bool{}
			for _, res := range ans.Results {
				for _, id := range res.Snapshots {
					seen[id] = true
				}
			}
			pg.NSnapshots = len(seen)
			if ans.NotIndexed > 0 {
				pg.Err = plural(ans.NotIndexed, "newer snapshot") + " not indexed yet (the next sync indexes them)."
			}
		}
		if ix := s.search.current(); ix != nil {
			pg.Suggest = slices.DeleteFunc(ix.Suggest(pg.Query, 20), func(n string) bool { return search.Matches(n, pg.Query) })
		}
	}
	s.render(w, r, "search", pg, hdrNoCache)
}

func (c *searchCache) current() *search.Index {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ix
}
