package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/mirrord/mirrord/internal/snapshot"
)

// view is the server's cached picture of the mutable metadata: which
// snapshots exist and where the channels point. Another process (the CLI)
// may change both, so it is reloaded when older than the refresh interval.
type view struct {
	at       time.Time // when it was loaded (monotonic)
	ver      uint64    // the store's meta Version read before loading (see store.Versioner)
	ids      []string  // sorted, oldest first
	idSet    map[string]struct{}
	chans    map[string]*snapshot.Channel
	chanList []*snapshot.Channel // sorted by name
	err      error               // the last reload's error (data is then the previous view's)
}

func (v *view) has(id string) bool {
	_, ok := v.idSet[id]
	return ok
}

// atOrBefore returns the newest ID not after id, or "".
func (v *view) atOrBefore(id string) string {
	i := sort.SearchStrings(v.ids, id)
	if i < len(v.ids) && v.ids[i] == id {
		return id
	}
	if i == 0 {
		return ""
	}
	return v.ids[i-1]
}

func (v *view) latest() string {
	if len(v.ids) == 0 {
		return ""
	}
	return v.ids[len(v.ids)-1]
}

// channelsOf returns the channels pointing at id.
func (v *view) channelsOf(id string) []string {
	out := snapshot.ChannelsOf(v.chanList, id)
	if out == nil {
		out = []string{}
	}
	return out
}

// view returns the current view. When the store can tell (store.Versioner),
// a metadata write by any process sharing it (a CLI promote) makes the very
// next request reload, so a command that returned is served at once.
// Otherwise the view is no older than the refresh interval; under steady
// traffic it is reloaded in the background once it is half that old, so
// requests rarely wait for a reload. When a reload fails but an older view
// exists, the older view is returned along with the error.
func (s *Server) view(ctx context.Context) (*view, error) {
	if s.versioner != nil {
		if v := s.cur.Load(); v != nil {
			if ver, err := s.versioner.Version(); err == nil && ver == v.ver && v.err == nil {
				return v, nil
			}
			if v.err != nil && time.Since(v.at) < s.refresh {
				return v, v.err // a failing store is retried at the refresh interval
			}
		}
		return s.reload(ctx, -1)
	}
	if v := s.cur.Load(); v != nil {
		age := time.Since(v.at)
		if age < s.refresh {
			if age >= s.refresh/2 && s.prefetching.CompareAndSwap(false, true) {
				go func() {
					defer s.prefetching.Store(false)
					s.reload(context.Background(), s.refresh/2)
				}()
			}
			return v, v.err
		}
	}
	return s.reload(ctx, s.refresh)
}

// reload loads a new view unless the current one (perhaps just reloaded by
// another goroutine) is younger than minAge; minAge < 0 means: unless the
// current one was loaded at the store's current Version.
func (s *Server) reload(ctx context.Context, minAge time.Duration) (*view, error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	old := s.cur.Load()
	var ver uint64
	if s.versioner != nil {
		var err error
		ver, err = s.versioner.Version()
		if minAge < 0 && err == nil && old != nil && old.err == nil && old.ver == ver {
			return old, nil // another request reloaded it meanwhile
		}
	}
	if old != nil && time.Since(old.at) < minAge {
		return old, old.err
	}
	// Not the request's context: other requests wait on this reload.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	start := time.Now() // the data is at least this fresh
	v, err := s.load(ctx)
	if err != nil {
		s.log.Error("reloading snapshot list and channels", "err", err)
		if old == nil {
			v = &view{idSet: map[string]struct{}{}, chans: map[string]*snapshot.Channel{}}
		} else {
			cp := *old
			v = &cp
		}
		v.at = start
		v.err = err
		s.cur.Store(v)
		return v, err
	}
	v.at = start
	v.ver = ver
	s.cur.Store(v)
	// Forget records of snapshots deleted meanwhile.
	s.recs.Range(func(k, _ any) bool {
		if !v.has(k.(string)) {
			s.recs.Delete(k)
		}
		return true
	})
	return v, nil
}

func (s *Server) load(ctx context.Context) (*view, error) {
	ids, err := s.cat.IDs(ctx)
	if err != nil {
		return nil, err
	}
	chans, err := s.cat.Channels(ctx)
	if err != nil {
		return nil, err
	}
	v := &view{
		ids:      ids,
		idSet:    make(map[string]struct{}, len(ids)),
		chans:    make(map[string]*snapshot.Channel, len(chans)),
		chanList: chans,
	}
	for _, id := range ids {
		v.idSet[id] = struct{}{}
	}
	sort.Slice(chans, func(i, j int) bool { return chans[i].Name < chans[j].Name })
	for _, ch := range chans {
		v.chans[ch.Name] = ch
	}
	return v, nil
}

// recInfo is a snapshot record with what serving its files needs
// precomputed.
type recInfo struct {
	rec     *snapshot.Record
	lastMod []string // Last-Modified header value
}

// recInfo returns the (immutable) record of snapshot id, cached.
func (s *Server) recInfo(ctx context.Context, id string) (*recInfo, error) {
	if ri, ok := s.recs.Load(id); ok {
		return ri.(*recInfo), nil
	}
	r, err := s.cat.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	ri := &recInfo{rec: r, lastMod: []string{r.Created.UTC().Format(http.TimeFormat)}}
	s.recs.Store(id, ri)
	return ri, nil
}

func (s *Server) record(ctx context.Context, id string) (*snapshot.Record, error) {
	ri, err := s.recInfo(ctx, id)
	if err != nil {
		return nil, err
	}
	return ri.rec, nil
}

// records returns the records of ids, skipping ones deleted meanwhile.
func (s *Server) records(ctx context.Context, ids []string) ([]*snapshot.Record, error) {
	out := make([]*snapshot.Record, 0, len(ids))
	for _, id := range ids {
		r, err := s.record(ctx, id)
		if errors.Is(err, snapshot.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("snapshot %s: %w", id, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// findSource returns the source kind/name of rec without allocating.
func findSource(rec *snapshot.Record, kind, name string) *snapshot.SourceRecord {
	for i := range rec.Sources {
		if rec.Sources[i].Kind == kind && rec.Sources[i].Name == name {
			return &rec.Sources[i]
		}
	}
	return nil
}

// changed refreshes the view after a mutation through the API and calls
// the OnChange hook.
func (s *Server) changed(ctx context.Context) {
	ctx = context.WithoutCancel(ctx)
	s.reload(ctx, 0)
	if s.opt.OnChange != nil {
		s.opt.OnChange(ctx)
	}
}

// Refresh makes a change made outside the API (a sync run by this process,
// a promotion seen elsewhere) visible at once, and calls OnChange.
func (s *Server) Refresh(ctx context.Context) { s.changed(ctx) }
