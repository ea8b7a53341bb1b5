// Package syncer runs a sync: every selected source into the store, then one
// new snapshot record. A sync is all or nothing: if any source fails, no
// snapshot is written (blobs already stored stay for the next attempt and
// are swept by gc if never referenced).
package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/search"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store"
)

// ErrUnknownSource: a source named on the command line is not configured.
var ErrUnknownSource = errors.New("unknown source")

// ErrBusy means another sync (or gc) holds the sync lock.
var ErrBusy = errors.New("another sync or gc is running")

// Syncer turns configured sources into snapshots.
type Syncer struct {
	Catalog     *snapshot.Catalog
	Fetch       *fetch.Fetcher
	Progress    progress.Reporter
	Log         *slog.Logger
	Sources     []source.Source
	Concurrency int // sources synced at once; default 4
	Metrics     *Metrics
	Signer      *signing.Key // mirrord's key, for kinds that re-sign metadata
	PublicURL   string
}

// Metrics are the sync's Prometheus metrics. The time of the last
// successful sync is recorded in the catalog (Catalog.NoteSync), so the
// server reports syncs made by any process.
type Metrics struct {
	duration *prometheus.HistogramVec
}

// NewMetrics registers the sync metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mirrord_sync_duration_seconds", Help: "Duration of syncs by result.",
			Buckets: prometheus.ExponentialBuckets(0.1, 3, 10),
		}, []string{"result"}),
	}
	reg.MustRegister(m.duration)
	return m
}

func (m *Metrics) observe(start time.Time, err error) {
	if m == nil {
		return
	}
	res := "ok"
	if err != nil {
		res = "error"
	}
	m.duration.WithLabelValues(res).Observe(time.Since(start).Seconds())
}

// Run syncs the named sources ("KIND/NAME"; all when empty) and writes a new
// snapshot. Sources not named keep their tree from the previous snapshot.
func (s *Syncer) Run(ctx context.Context, names []string) (rec *snapshot.Record, err error) {
	start := time.Now()
	defer func() { s.Metrics.observe(start, err) }()
	sel, err := s.selected(names)
	if err != nil {
		return nil, err
	}
	st := s.Catalog.Store()
	unlock, err := st.TryLock(ctx, snapshot.SyncLock)
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("%w: wait for it to finish and try again", ErrBusy)
	}
	if err != nil {
		return nil, err
	}
	defer unlock()
	if r, ok := st.Blobs().(store.Recoverer); ok {
		if n, err := r.Recover(ctx); err != nil {
			return nil, err
		} else if n > 0 {
			s.Log.Warn("removed blobs a crashed sync left damaged", "blobs", n)
		}
	}
	if n, err := st.Blobs().CleanTemp(ctx, 0); err != nil {
		return nil, fmt.Errorf("cleaning leftovers of interrupted writes: %w", err)
	} else if n > 0 {
		s.Log.Info("removed leftovers of an interrupted write", "files", n)
	}
	prev, err := s.Catalog.Latest(ctx)
	if err != nil && !errors.Is(err, snapshot.ErrNotFound) {
		return nil, err
	}
	recs, err := s.syncAll(ctx, sel, prev)
	if err != nil {
		return nil, err
	}
	if prev != nil && prev.SameContent(recs) {
		// Nothing upstream moved: a new record would repeat prev.
		s.Log.Info("unchanged: every source serves what the latest snapshot has; no new snapshot", "latest", prev.ID, "took", time.Since(start).Round(time.Millisecond))
		s.noteSync(ctx, prev.ID, true)
		return prev, nil
	}
	rec, err = s.Catalog.Commit(ctx, recs)
	if err != nil {
		return nil, err
	}
	s.Log.Info("snapshot written", "id", rec.ID, "sources", len(rec.Sources), "bytes", rec.Size(), "took", time.Since(start).Round(time.Millisecond))
	s.noteSync(ctx, rec.ID, false)
	// Still under the sync lock: the search index has one writer. The
	// snapshot stands without it; the next sync catches the index up.
	if _, err := search.Update(ctx, s.Catalog); err != nil {
		s.Log.Warn("updating the package search index failed; the next sync retries", "snapshot", rec.ID, "err", err)
	}
	return rec, nil
}

// noteSync records the successful sync for metrics; failing to is logged,
// not fatal (the snapshot is written).
func (s *Syncer) noteSync(ctx context.Context, id string, unchanged bool) {
	if err := s.Catalog.NoteSync(ctx, id, unchanged); err != nil {
		s.Log.Warn("recording the sync's time", "err", err)
	}
}

// Check reports whether Run(ctx, names) would accept names: the error
// wraps ErrUnknownSource for one that is not configured.
func (s *Syncer) Check(names []string) error {
	_, err := s.selected(names)
	return err
}

func (s *Syncer) selected(names []string) (map[string]bool, error) {
	known := map[string]bool{}
	for _, src := range s.Sources {
		known[source.Key(src)] = true
	}
	sel := map[string]bool{}
	for _, n := range names {
		if !known[n] {
			return nil, fmt.Errorf("%w: no source %q in the config (have %v)", ErrUnknownSource, n, slices.Sorted(mapKeys(known)))
		}
		sel[n] = true
	}
	if len(names) == 0 {
		sel = known
	}
	return sel, nil
}

func mapKeys(m map[string]bool) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// syncAll runs the selected sources concurrently and carries the others
// over from prev.
func (s *Syncer) syncAll(ctx context.Context, sel map[string]bool, prev *snapshot.Record) ([]snapshot.SourceRecord, error) {
	out := make([]snapshot.SourceRecord, len(s.Sources))
	keep := make([]bool, len(s.Sources))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(s.Concurrency, 1))
	for i, src := range s.Sources {
		var before *snapshot.SourceRecord
		if prev != nil {
			before, _ = prev.Source(source.Key(src))
		}
		if !sel[source.Key(src)] {
			if before != nil {
				out[i], keep[i] = *before, true
			}
			continue
		}
		g.Go(func() error {
			r, err := s.syncOne(gctx, src, before)
			if err != nil {
				return err
			}
			out[i], keep[i] = *r, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var recs []snapshot.SourceRecord
	for i := range out {
		if keep[i] {
			recs = append(recs, out[i])
		}
	}
	return recs, nil
}

func (s *Syncer) syncOne(ctx context.Context, src source.Source, prev *snapshot.SourceRecord) (*snapshot.SourceRecord, error) {
	key := source.Key(src)
	start := time.Now()
	log := s.Log.With("source", key)
	env := &source.Env{
		Blobs: s.Catalog.Store().Blobs(), Fetch: s.Fetch, Catalog: s.Catalog, Prev: prev,
		Progress: s.Progress, Log: log,
		Signer: s.Signer, PublicURL: s.PublicURL,
	}
	res, err := src.Sync(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("sync %s: %w", key, err)
	}
	rec, err := s.record(ctx, src, res)
	if err != nil {
		return nil, fmt.Errorf("sync %s: %w", key, err)
	}
	log.Info("source synced", "files", rec.Files, "bytes", rec.Size, "unchanged", prev != nil && prev.Tree == rec.Tree, "took", time.Since(start).Round(time.Millisecond))
	return rec, nil
}

func (s *Syncer) record(ctx context.Context, src source.Source, res *source.Result) (*snapshot.SourceRecord, error) {
	blobs := s.Catalog.Store().Blobs()
	tree, err := snapshot.NewTree(res.Entries)
	if err != nil {
		return nil, err
	}
	td, err := snapshot.PutTree(ctx, blobs, tree)
	if err != nil {
		return nil, err
	}
	rec := &snapshot.SourceRecord{
		Kind: src.Kind(), Name: src.Name(), Upstream: res.Upstream, Tree: td,
		Files: len(tree.Entries), Size: tree.Size(), Refs: res.Refs, Meta: res.Meta, Synced: time.Now().UTC(),
	}
	if res.Items != nil {
		if rec.Items, err = snapshot.PutItems(ctx, blobs, res.Items); err != nil {
			return nil, err
		}
		rec.NItems = len(res.Items)
	}
	return rec, nil
}
