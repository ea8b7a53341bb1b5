package apt

import (
	"context"
	"fmt"
	"net/url"
	"sort"

	"golang.org/x/sync/errgroup"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/store"
)

// collectPool gathers the pool files of the mirrored packages, refusing a
// path that two indices list with different content.
func (r *run) collectPool(sel *subset) error {
	for _, ix := range r.ixs {
		for _, p := range ix.pkgs {
			if sel.hasPkg(p) {
				if err := r.addPool(ix, p.File); err != nil {
					return err
				}
			}
		}
		for _, sp := range ix.srcs {
			if !sel.hasSource(ix.suite, sp.Name) {
				continue
			}
			for _, f := range sp.Files {
				if err := r.addPool(ix, f); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (r *run) addPool(ix *ixState, f poolFile) error {
	if old, ok := r.pool[f.Path]; ok {
		if old.SHA256 != f.SHA256 || old.Size != f.Size {
			return fmt.Errorf("suite %s: %s lists %s with sha256 %s (%d bytes), another index lists it with sha256 %s (%d bytes); the upstream is inconsistent",
				ix.suite, ix.name, f.Path, f.SHA256, f.Size, old.SHA256, old.Size)
		}
		return nil
	}
	r.pool[f.Path] = f
	return nil
}

// fetchPool downloads every pool file not in the store yet, concurrently,
// each verified against its size and SHA256 while it streams.
func (r *run) fetchPool(ctx context.Context, sel *subset) error {
	if err := r.collectPool(sel); err != nil {
		return err
	}
	files := make([]poolFile, 0, len(r.pool))
	var total int64
	for _, f := range r.pool {
		files = append(files, f)
		total += f.Size
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })
	task := r.env.Progress.Task("apt/"+r.s.cfg.Name+" pool", progress.Bytes, total)
	g, gctx := errgroup.WithContext(fetch.WithProgress(ctx, task.Fetched))
	g.SetLimit(r.s.opt.PoolWorkers)
	for _, f := range files {
		g.Go(func() error {
			info, err := r.env.Fetch.Blob(gctx, r.s.base+escapePath(f.Path), store.Expect{Digest: f.SHA256, Size: f.Size, MaxSize: max(f.Size, 1)})
			if err != nil {
				return fmt.Errorf("pool file %s (its index lists sha256 %s, %d bytes): %w", f.Path, f.SHA256, f.Size, fetch.IndexMismatch(err))
			}
			task.Add(info.Size)
			return nil
		})
	}
	err := g.Wait()
	task.Done(err)
	return err
}

// escapePath escapes a repository path for use in a URL ('+' and '~' stay,
// as apt sends them; '%', '#', '?' and spaces are escaped).
func escapePath(p string) string {
	return (&url.URL{Path: p}).EscapedPath()
}
