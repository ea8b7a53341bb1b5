package syncer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// GC is `mirrord gc`: under the sync lock (so no sync runs on this store
// meanwhile), it sweeps every blob no snapshot references that is older
// than grace (git packs included: they are blobs like any other). The
// error wraps ErrBusy when a sync holds the lock.
func GC(ctx context.Context, cat *snapshot.Catalog, grace time.Duration, dryRun bool) (snapshot.GCStats, error) {
	unlock, err := cat.Store().TryLock(ctx, snapshot.SyncLock)
	if errors.Is(err, store.ErrLocked) {
		return snapshot.GCStats{}, fmt.Errorf("%w: wait for it to finish and run gc again", ErrBusy)
	}
	if err != nil {
		return snapshot.GCStats{}, err
	}
	defer unlock()
	return cat.GC(ctx, grace, dryRun)
}
