package syncer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store"
)

// GCOptions configure GC.
type GCOptions struct {
	Catalog *snapshot.Catalog
	// Sources are the configured sources; those with state outside the
	// blob store (source.Collector) drop what no snapshot needs.
	Sources  []source.Source
	StateDir string // as Syncer.StateDir
	Grace    time.Duration
	DryRun   bool
}

// GC is `mirrord gc`: under the sync lock (so no sync runs on this store
// meanwhile), it sweeps every blob no snapshot references that is older
// than the grace period, then lets each source with outside state collect
// it. The error wraps ErrBusy when a sync holds the lock.
func GC(ctx context.Context, opt GCOptions) (snapshot.GCStats, error) {
	unlock, err := opt.Catalog.Store().TryLock(ctx, snapshot.SyncLock)
	if errors.Is(err, store.ErrLocked) {
		return snapshot.GCStats{}, fmt.Errorf("%w: wait for it to finish and run gc again", ErrBusy)
	}
	if err != nil {
		return snapshot.GCStats{}, err
	}
	defer unlock()
	st, err := opt.Catalog.GC(ctx, opt.Grace, opt.DryRun)
	if err != nil || opt.DryRun {
		return st, err
	}
	return st, collect(ctx, opt)
}

// collect calls every Collector with its source's record from each
// snapshot that still exists.
func collect(ctx context.Context, opt GCOptions) error {
	recs, err := opt.Catalog.List(ctx)
	if err != nil {
		return err
	}
	for _, s := range opt.Sources {
		c, ok := s.(source.Collector)
		if !ok {
			continue
		}
		var live []*snapshot.SourceRecord
		for _, r := range recs {
			if sr, ok := r.Source(source.Key(s)); ok {
				live = append(live, sr)
			}
		}
		if err := c.Collect(ctx, stateDir(opt.StateDir, s), live); err != nil {
			return fmt.Errorf("gc %s: %w", source.Key(s), err)
		}
	}
	return nil
}

// stateDir is where source s keeps state under root: root/KIND/NAME.
func stateDir(root string, s source.Source) string {
	return filepath.Join(root, s.Kind(), s.Name())
}
