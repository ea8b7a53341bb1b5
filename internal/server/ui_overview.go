package server

import (
	"net/http"
	"slices"
	"strings"

	"github.com/mirrord/mirrord/internal/bytesize"
	"github.com/mirrord/mirrord/internal/snapshot"
)

type overviewPage struct {
	page
	NSnapshots       int
	Latest, Err      string
	ClientConfigHref string
	KeyFingerprint   string
	Channels         []chanRow
	Snapshots        []snapRow
	Pager            pager
	Pick             diffPick
	CanSync          bool
	Sync             *syncView
	ReplicasOn       bool
	Replicas         []Replica
	ReplicaErr       string
}

type chanRow struct {
	Name, Snapshot, Previous, Moved, Action, By string
}

type snapRow struct {
	ID, Prev, Created, Size string
	Sources                 []srcChip
	Channels                []string
}

// diffPick fills the "compare A with B" form; IDs newest first.
type diffPick struct {
	IDs  []string
	A, B string
}

func newestFirst(ids []string) []string {
	out := slices.Clone(ids)
	slices.Reverse(out)
	return out
}

func pick(ids []string, a, b string) diffPick {
	p := diffPick{IDs: newestFirst(ids), A: a, B: b}
	if n := len(ids); n > 0 && b == "" {
		p.B = ids[n-1]
		if n > 1 && a == "" {
			p.A = ids[n-2]
		}
	}
	return p
}

// uiOverview renders /.
func (s *Server) uiOverview(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v, verr := s.view(ctx)
	if v == nil {
		s.uiError(w, r, verr)
		return
	}
	pg := overviewPage{page: s.page("Overview"), NSnapshots: len(v.ids), Latest: v.latest(),
		KeyFingerprint: s.opt.UI.KeyFingerprint, CanSync: s.opt.Syncs != nil, Pick: pick(v.ids, "", "")}
	if verr != nil {
		pg.Err = "Could not refresh the snapshot list: " + verr.Error()
	}
	pg.ClientConfigHref = "/ui/snapshots/" + pg.Latest + "#client-config"
	if _, ok := v.chans["production"]; ok {
		pg.ClientConfigHref = "/ui/channels/production#client-config"
	}
	for _, ch := range v.chanList {
		row := chanRow{Name: ch.Name, Snapshot: ch.Snapshot, Previous: ch.Previous()}
		if n := len(ch.History); n > 0 {
			m := ch.History[n-1]
			row.Moved, row.Action, row.By = fmtTime(m.At), m.Action, m.By
		}
		pg.Channels = append(pg.Channels, row)
	}
	// Newest first, one page of records.
	lo, hi, pgr := paginate(r, len(v.ids), snapshotsPerPage)
	pg.Pager = pgr
	for i := len(v.ids) - 1 - lo; i >= len(v.ids)-hi; i-- {
		rec, err := s.record(ctx, v.ids[i])
		if err != nil {
			continue // deleted meanwhile
		}
		row := snapRow{ID: rec.ID, Created: fmtTime(rec.Created), Size: bytesize.Format(rec.Size()), Sources: chips(rec), Channels: v.channelsOf(rec.ID)}
		if i > 0 {
			row.Prev = v.ids[i-1]
		}
		pg.Snapshots = append(pg.Snapshots, row)
	}
	if sl, ok := s.opt.Syncs.(SyncLister); ok {
		if id, ok := sl.Latest(); ok {
			pg.Sync, _ = s.syncView(id)
		}
	}
	if s.opt.UI.Replicas != nil {
		pg.ReplicasOn = true
		reps, err := s.opt.UI.Replicas(ctx)
		if err != nil {
			pg.ReplicaErr = "Listing replicas in Consul: " + err.Error()
		}
		pg.Replicas = reps
	}
	s.render(w, r, "index", pg, hdrNoCache)
}

type snapshotPage struct {
	page
	ID, Created, Size, Prev, Next string
	Channels, AllChannels         []string
	Sources                       []srcRow
	Src                           *srcDetail
	ClientConfig                  string
}

type srcRow struct {
	Key, Upstream, Size, Synced string
	Items, Files                int
}

type fact struct {
	K, V string
	Mono bool
}

type srcDetail struct {
	Key, Noun, Filter string
	Facts             []fact
	Refs              []snapshot.Item
	Items             []snapshot.Item
	Matched, Total    int
	Pager             pager
}

// uiSnapshot renders /ui/snapshots/{ID}[?source=KEY&q=FILTER&page=N].
func (s *Server) uiSnapshot(w http.ResponseWriter, r *http.Request, id string) {
	if s.redirectToSnapshot(w, r, id) {
		return
	}
	rec, v, err := s.exactRecord(r, id)
	if err != nil {
		s.uiError(w, r, err)
		return
	}
	pg := snapshotPage{page: s.page("Snapshot " + id), ID: id, Created: fmtTime(rec.Created), Size: bytesize.Format(rec.Size()), Channels: v.channelsOf(id)}
	for _, ch := range v.chanList {
		pg.AllChannels = append(pg.AllChannels, ch.Name)
	}
	i, _ := slices.BinarySearch(v.ids, id)
	if i > 0 {
		pg.Prev = v.ids[i-1]
	}
	if i+1 < len(v.ids) {
		pg.Next = v.ids[i+1]
	}
	for i := range rec.Sources {
		src := &rec.Sources[i]
		pg.Sources = append(pg.Sources, srcRow{Key: src.Key(), Upstream: src.Upstream, Size: bytesize.Format(src.Size), Synced: fmtTime(src.Synced), Items: itemCount(src), Files: src.Files})
	}
	key := r.URL.Query().Get("source")
	if key == "" && len(rec.Sources) > 0 {
		key = rec.Sources[0].Key()
	}
	if key != "" {
		src, ok := rec.Source(key)
		if !ok {
			s.uiError(w, r, errorf(http.StatusNotFound, "snapshot %s has no source %q", id, key))
			return
		}
		if pg.Src, err = s.srcDetail(r, src); err != nil {
			s.uiError(w, r, err)
			return
		}
	}
	if s.opt.UI.ClientConfig != nil {
		pg.ClientConfig = s.opt.UI.ClientConfig("/snapshots/"+id, sourceKeys(rec))
	}
	s.render(w, r, "snapshot", pg, hdrNoCache)
}

// redirectToSnapshot sends a UI link to a time that is not a snapshot to
// the latest snapshot at or before it (as /snapshots/ID/ does).
func (s *Server) redirectToSnapshot(w http.ResponseWriter, r *http.Request, id string) bool {
	if _, err := snapshot.ParseID(id); err != nil {
		return false
	}
	v, _ := s.view(r.Context())
	if v == nil || v.has(id) {
		return false
	}
	if to := v.atOrBefore(id); to != "" {
		u := "/ui/snapshots/" + to
		if r.URL.RawQuery != "" {
			u += "?" + r.URL.RawQuery
		}
		http.Redirect(w, r, u, http.StatusFound)
		return true
	}
	return false
}

func (s *Server) srcDetail(r *http.Request, src *snapshot.SourceRecord) (*srcDetail, error) {
	d := &srcDetail{Key: src.Key(), Noun: strings.ToUpper(kindNoun(src.Kind)[:1]) + kindNoun(src.Kind)[1:] + "s"}
	d.Facts = s.facts(src)
	if len(src.Refs) > 0 {
		for _, n := range slices.Sorted(mapKeysOf(src.Refs)) {
			d.Refs = append(d.Refs, snapshot.Item{Name: n, Version: src.Refs[n]})
		}
		return d, nil
	}
	items, err := s.items(r.Context(), src)
	if err != nil {
		return nil, err
	}
	d.Total = len(items)
	d.Filter = strings.TrimSpace(r.URL.Query().Get("q"))
	if d.Filter != "" {
		f := strings.ToLower(d.Filter)
		var m []snapshot.Item
		for _, it := range items {
			if strings.Contains(strings.ToLower(it.Name), f) {
				m = append(m, it)
			}
		}
		items = m
	}
	d.Matched = len(items)
	lo, hi, p := paginate(r, len(items), itemsPerPage)
	d.Items, d.Pager = items[lo:hi], p
	return d, nil
}

func mapKeysOf(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// facts are what a snapshot records about how a source was verified and
// published.
func (s *Server) facts(src *snapshot.SourceRecord) []fact {
	fs := []fact{{K: "Upstream", V: src.Upstream, Mono: true}, {K: "Synced", V: fmtTime(src.Synced) + " UTC"},
		{K: "Tree", V: string(src.Tree), Mono: true}}
	if src.Items != "" {
		fs = append(fs, fact{K: "Item list", V: string(src.Items), Mono: true})
	}
	for _, k := range slices.Sorted(mapKeysOf(src.Meta)) {
		fs = append(fs, fact{K: metaLabel(k), V: src.Meta[k], Mono: true})
	}
	switch src.Kind {
	case "apt", "yum":
		fs = append(fs, fact{K: "Verification", V: "upstream signature checked against the configured key at sync; every file checked against the signed index's checksum"})
		if s.opt.UI.KeyFingerprint != "" {
			fs = append(fs, fact{K: "Signed by", V: s.opt.UI.KeyFingerprint + " (mirrord's key, for metadata mirrord publishes)", Mono: true})
		}
	case "file":
		fs = append(fs, fact{K: "Verification", V: "every file matched the sha256 pinned in the configuration"})
	case "git":
		fs = append(fs, fact{K: "Verification", V: "objects fetched with go-git and checked by git's object hashes; the ref set is pinned"})
	}
	return fs
}

// metaLabel names a SourceRecord.Meta key for people.
func metaLabel(k string) string {
	switch {
	case strings.HasPrefix(k, "release."):
		return "Signed Release of " + strings.TrimPrefix(k, "release.") + " (sha256 of InRelease/Release+gpg)"
	case k == "repomd_sha256":
		return "Signed repomd.xml (sha256)"
	case k == "pin":
		return "Ref set pin"
	case k == "settings", k == "config":
		return "Settings fingerprint"
	}
	return k
}

func sourceKeys(rec *snapshot.Record) []string {
	out := make([]string, len(rec.Sources))
	for i := range rec.Sources {
		out[i] = rec.Sources[i].Key()
	}
	return out
}
