package snapshot

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mirrord/mirrord/internal/store"
)

// SyncLock is the store lock held by a sync and by gc, so gc never sweeps
// the blobs of a sync in flight.
const SyncLock = "sync"

// GCStats reports what a collection did.
type GCStats struct {
	Referenced   int   `json:"referenced"`
	Deleted      int   `json:"deleted"`
	DeletedBytes int64 `json:"deleted_bytes"`
	Young        int   `json:"young"` // unreferenced but inside the grace period
	TempRemoved  int   `json:"temp_removed"`
}

// Referenced returns every blob digest some snapshot record needs.
func (c *Catalog) Referenced(ctx context.Context) (map[store.Digest]bool, error) {
	recs, err := c.List(ctx)
	if err != nil {
		return nil, err
	}
	live := map[store.Digest]bool{}
	for _, r := range recs {
		for _, s := range r.Sources {
			live[s.Tree] = true
			if s.Items != "" {
				live[s.Items] = true
			}
			t, err := c.Tree(ctx, s.Tree)
			if err != nil {
				return nil, fmt.Errorf("snapshot %s, source %s: %w", r.ID, s.Key(), err)
			}
			for _, e := range t.Entries {
				live[e.Digest] = true
			}
		}
	}
	return live, nil
}

// GC deletes blobs that no snapshot references and that are older than
// grace (mark and sweep). The caller must hold SyncLock; grace protects
// blobs written by a sync running elsewhere that gc cannot see.
func (c *Catalog) GC(ctx context.Context, grace time.Duration, dryRun bool) (GCStats, error) {
	var st GCStats
	live, err := c.Referenced(ctx)
	if err != nil {
		return st, fmt.Errorf("gc mark: %w", err)
	}
	st.Referenced = len(live)
	cutoff := c.now().Add(-grace)
	var dead []store.Info
	err = c.st.Blobs().List(ctx, func(in store.Info) error {
		switch {
		case live[in.Digest]:
		case in.ModTime.After(cutoff):
			st.Young++
		default:
			dead = append(dead, in)
		}
		return nil
	})
	if err != nil {
		return st, fmt.Errorf("gc sweep: %w", err)
	}
	for _, in := range dead {
		if !dryRun {
			if err := c.st.Blobs().Delete(ctx, in.Digest); err != nil {
				return st, fmt.Errorf("gc: deleting %s: %w", in.Digest, err)
			}
		}
		st.Deleted++
		st.DeletedBytes += in.Size
	}
	if !dryRun {
		n, err := c.st.Blobs().CleanTemp(ctx, grace)
		if err != nil {
			return st, fmt.Errorf("gc: cleaning temp files: %w", err)
		}
		st.TempRemoved = n
	}
	return st, nil
}

// Problem is one verification failure.
type Problem struct {
	Snapshot string       `json:"snapshot"`
	Source   string       `json:"source"`
	Path     string       `json:"path"`
	Digest   store.Digest `json:"digest"`
	Err      string       `json:"error"`
}

func (p Problem) String() string {
	return fmt.Sprintf("snapshot %s, %s: %s (%s): %s", p.Snapshot, p.Source, p.Path, p.Digest, p.Err)
}

// VerifyStats summarises a verification.
type VerifyStats struct {
	Snapshots int       `json:"snapshots"`
	Blobs     int       `json:"blobs"`
	Bytes     int64     `json:"bytes"`
	Problems  []Problem `json:"problems"`
}

type blobRef struct {
	snap, source, path string
	size               int64
}

// Verify re-hashes every blob the given snapshots (all when ids is empty)
// reference, each blob once, and reports missing or corrupt ones.
func (c *Catalog) Verify(ctx context.Context, ids []string, workers int) (VerifyStats, error) {
	var st VerifyStats
	refs, err := c.collect(ctx, ids, &st)
	if err != nil {
		return st, err
	}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(workers, 1))
	for d, ref := range refs {
		g.Go(func() error {
			n, err := c.rehash(gctx, d, ref.size)
			mu.Lock()
			defer mu.Unlock()
			st.Blobs++
			st.Bytes += n
			if err != nil {
				st.Problems = append(st.Problems, Problem{ref.snap, ref.source, ref.path, d, err.Error()})
			}
			return gctx.Err()
		})
	}
	if err := g.Wait(); err != nil {
		return st, err
	}
	sort.Slice(st.Problems, func(i, j int) bool { return st.Problems[i].String() < st.Problems[j].String() })
	return st, nil
}

func (c *Catalog) collect(ctx context.Context, ids []string, st *VerifyStats) (map[store.Digest]blobRef, error) {
	if len(ids) == 0 {
		var err error
		if ids, err = c.IDs(ctx); err != nil {
			return nil, err
		}
	}
	refs := map[store.Digest]blobRef{}
	for _, id := range ids {
		r, err := c.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		st.Snapshots++
		for _, s := range r.Sources {
			refs[s.Tree] = blobRef{id, s.Key(), "(tree)", -1}
			if s.Items != "" {
				refs[s.Items] = blobRef{id, s.Key(), "(items)", -1}
			}
			t, err := c.Tree(ctx, s.Tree)
			if err != nil {
				st.Problems = append(st.Problems, Problem{id, s.Key(), "(tree)", s.Tree, err.Error()})
				continue
			}
			for _, e := range t.Entries {
				refs[e.Digest] = blobRef{id, s.Key(), e.Path, e.Size}
			}
		}
	}
	return refs, nil
}

func (c *Catalog) rehash(ctx context.Context, d store.Digest, size int64) (int64, error) {
	b, err := c.st.Blobs().Open(ctx, d)
	if err != nil {
		return 0, err
	}
	defer b.Close()
	h := sha256.New()
	n, err := io.Copy(h, b)
	if err != nil {
		return n, fmt.Errorf("reading: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != string(d) {
		return n, fmt.Errorf("content hashes to %s", got)
	}
	if size >= 0 && n != size {
		return n, fmt.Errorf("size %d, tree says %d", n, size)
	}
	return n, nil
}
