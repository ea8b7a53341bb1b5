package server

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// itemsCache keeps the last few decoded item lists (a 65,000-package list
// is a few MB to decode; paging through it should not decode it per page).
type itemsCache struct {
	mu    sync.Mutex
	order []store.Digest
	lists map[store.Digest][]snapshot.Item
}

const itemsCached = 6

func (s *Server) items(ctx context.Context, src *snapshot.SourceRecord) ([]snapshot.Item, error) {
	c := &s.itemsCache
	key := src.Items
	if key == "" {
		key = src.Tree
	}
	c.mu.Lock()
	if l, ok := c.lists[key]; ok {
		c.mu.Unlock()
		return l, nil
	}
	c.mu.Unlock()
	l, err := s.cat.Items(ctx, src)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lists == nil {
		c.lists = map[store.Digest][]snapshot.Item{}
	}
	if _, ok := c.lists[key]; !ok {
		c.order = append(c.order, key)
		c.lists[key] = l
		if len(c.order) > itemsCached {
			delete(c.lists, c.order[0])
			c.order = c.order[1:]
		}
	}
	return l, nil
}

type diffPage struct {
	page
	A, B, From, To string
	Pick           diffPick
	Sources        []srcDiffView
}

type srcDiffView struct {
	Source, Status, Noun string
	Counts               []diffCount
	Rows                 []diffRow
	Cut                  int
}

type diffCount struct {
	N            int
	Label, Class string
}

type diffRow struct {
	Class, Label, Name, From, To string
}

// uiPickDiff answers the compare form: /ui/diff?a=A&b=B → /ui/diff/A/B.
func (s *Server) uiPickDiff(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	a, b := q.Get("a"), q.Get("b")
	for _, id := range []string{a, b} {
		if _, err := snapshot.ParseID(id); err != nil {
			s.uiError(w, r, errorf(http.StatusBadRequest, "pick two snapshots to compare: %v", err))
			return
		}
	}
	http.Redirect(w, r, "/ui/diff/"+a+"/"+b, http.StatusSeeOther)
}

// uiDiff renders /ui/diff/{A}/{B}.
func (s *Server) uiDiff(w http.ResponseWriter, r *http.Request, a, b string) {
	ra, v, err := s.exactRecord(r, a)
	if err != nil {
		s.uiError(w, r, err)
		return
	}
	rb, _, err := s.exactRecord(r, b)
	if err != nil {
		s.uiError(w, r, err)
		return
	}
	pg := diffPage{page: s.page("Diff " + a + " → " + b), A: a, B: b, From: a, To: b, Pick: pick(v.ids, a, b)}
	if pg.Sources, err = s.diffViews(r.Context(), ra, rb); err != nil {
		s.uiError(w, r, err)
		return
	}
	s.render(w, r, "diff", pg, hdrListing)
}

// diffViews is the catalog's diff of a and b, worded for people: changed
// items become upgraded or downgraded where the kind has a version order.
func (s *Server) diffViews(ctx context.Context, a, b *snapshot.Record) ([]srcDiffView, error) {
	ds, err := s.cat.Diff(ctx, a, b)
	if err != nil {
		return nil, err
	}
	out := make([]srcDiffView, 0, len(ds))
	for _, d := range ds {
		out = append(out, s.diffView(d))
	}
	return out, nil
}

func (s *Server) diffView(d snapshot.SourceDiff) srcDiffView {
	kind, _, _ := strings.Cut(d.Source, "/")
	noun := kindNoun(kind)
	v := srcDiffView{Source: d.Source, Status: d.Status, Noun: strings.ToUpper(noun[:1]) + noun[1:]}
	cmp := s.opt.UI.Compare[kind]
	changed := "changed"
	if kind == "git" {
		changed = "moved"
	}
	groups := map[string][]diffRow{}
	for _, c := range d.Changed {
		label := changed
		if cmp != nil {
			switch n := cmp(c.From, c.To); {
			case n < 0:
				label = "upgraded"
			case n > 0:
				label = "downgraded"
			}
		}
		groups[label] = append(groups[label], diffRow{Class: label, Label: label, Name: c.Name, From: short(c.From), To: short(c.To)})
	}
	for _, it := range d.Added {
		groups["added"] = append(groups["added"], diffRow{Class: "added", Label: "added", Name: it.Name, To: short(it.Version)})
	}
	for _, it := range d.Removed {
		groups["removed"] = append(groups["removed"], diffRow{Class: "removed", Label: "removed", Name: it.Name, From: short(it.Version)})
	}
	for _, label := range []string{"upgraded", "downgraded", changed, "added", "removed"} {
		rows := groups[label]
		if len(rows) == 0 {
			continue
		}
		v.Counts = append(v.Counts, diffCount{N: len(rows), Label: label, Class: label})
		room := diffRowsMax - len(v.Rows)
		if room <= 0 {
			v.Cut += len(rows)
			continue
		}
		if len(rows) > room {
			v.Cut += len(rows) - room
			rows = rows[:room]
		}
		v.Rows = append(v.Rows, rows...)
	}
	return v
}

// short abbreviates digests (file items are versioned by sha256).
func short(v string) string {
	if len(v) == 64 && strings.Trim(v, "0123456789abcdef") == "" {
		return v[:12] + "…"
	}
	return v
}

type channelPage struct {
	page
	Name, Snapshot, Previous, Moved, Done, Target, Selected string
	IDs                                                     []string
	Preview                                                 *diffPage
	History                                                 []chanMove
	Pager                                                   pager
	ClientConfig                                            string
}

type chanMove struct {
	At, Action, Snapshot, From, By string
}

// uiPickChannel answers the snapshot page's promote form:
// /ui/channels?name=C&snapshot=ID → /ui/channels/C?snapshot=ID#preview.
func (s *Server) uiPickChannel(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name, id := strings.TrimSpace(q.Get("name")), q.Get("snapshot")
	if err := snapshot.ValidChannel(name); err != nil {
		s.uiError(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	if _, err := snapshot.ParseID(id); err != nil {
		s.uiError(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	http.Redirect(w, r, "/ui/channels/"+name+"?snapshot="+id+"#preview", http.StatusSeeOther)
}

// uiChannel renders /ui/channels/{C}[?snapshot=ID] (ID: the promotion to
// preview).
func (s *Server) uiChannel(w http.ResponseWriter, r *http.Request, name string) {
	if err := snapshot.ValidChannel(name); err != nil {
		s.uiError(w, r, errorf(http.StatusBadRequest, "%v", err))
		return
	}
	ctx := r.Context()
	v, err := s.view(ctx)
	if v == nil {
		s.uiError(w, r, err)
		return
	}
	ch, err := s.cat.Channel(ctx, name)
	if errors.Is(err, snapshot.ErrNotFound) {
		ch, err = &snapshot.Channel{Name: name}, nil
	}
	if err != nil {
		s.uiError(w, r, err)
		return
	}
	q := r.URL.Query()
	pg := channelPage{page: s.page("Channel " + name), Name: name, Snapshot: ch.Snapshot, Previous: ch.Previous(),
		IDs: newestFirst(v.ids), Target: q.Get("snapshot")}
	switch q.Get("done") {
	case "promote":
		pg.Done = "promoted"
	case "rollback":
		pg.Done = "rolled back"
	}
	pg.Selected = pg.Target
	if pg.Selected == "" {
		pg.Selected = v.latest()
	}
	if pg.Target != "" {
		if pg.Preview, err = s.promotePreview(r, ch, pg.Target); err != nil {
			s.uiError(w, r, err)
			return
		}
	}
	lo, hi, p := paginate(r, len(ch.History), movesPerPage)
	pg.Pager = p
	for i := len(ch.History) - 1 - lo; i >= len(ch.History)-hi; i-- {
		m := ch.History[i]
		pg.History = append(pg.History, chanMove{At: fmtTime(m.At), Action: m.Action, Snapshot: m.Snapshot, From: m.From, By: m.By})
	}
	if n := len(ch.History); n > 0 {
		pg.Moved = fmtTime(ch.History[n-1].At)
	}
	if s.opt.UI.ClientConfig != nil && ch.Snapshot != "" {
		if rec, err := s.record(ctx, ch.Snapshot); err == nil {
			pg.ClientConfig = s.opt.UI.ClientConfig("/channels/"+url.PathEscape(name), sourceKeys(rec))
		}
	}
	s.render(w, r, "channel", pg, hdrNoCache)
}

// promotePreview is the diff from the channel's snapshot (or nothing) to
// target.
func (s *Server) promotePreview(r *http.Request, ch *snapshot.Channel, target string) (*diffPage, error) {
	rb, _, err := s.exactRecord(r, target)
	if err != nil {
		return nil, err
	}
	if target == ch.Snapshot {
		return nil, nil
	}
	ra := &snapshot.Record{}
	if ch.Snapshot != "" {
		if ra, _, err = s.exactRecord(r, ch.Snapshot); err != nil {
			return nil, err
		}
	}
	dp := &diffPage{A: ch.Snapshot, B: target, From: ch.Snapshot, To: target}
	if dp.From == "" {
		dp.From = "(nothing)"
	}
	dp.Sources, err = s.diffViews(r.Context(), ra, rb)
	return dp, err
}
