package gitcache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mirrord/mirrord/internal/snapshot"
)

// trim drops from the local repository the pins of snapshots that no
// longer exist (keep, the pin being synced, stays), then lets git reclaim
// the objects only they needed. The store is not touched: gc's mark and
// sweep deletes packs no snapshot names. It runs at the end of each sync
// and does nothing unless some pin is dead, so a deleted snapshot costs
// one `git gc` on the next sync. The top-level refs (upstream's latest
// state) stay: they are the next fetch's base.
func (s *Source) trim(ctx context.Context, cat *snapshot.Catalog, m *mirror, keep string) error {
	if cat == nil {
		return nil
	}
	live := map[string]bool{keep: true}
	recs, err := cat.List(ctx)
	if err != nil {
		return err
	}
	for _, r := range recs {
		sr, ok := r.Source(Kind + "/" + s.repo.Name)
		if !ok {
			continue
		}
		pin := sr.Meta[metaPin]
		if !validPin(pin) {
			return fmt.Errorf("snapshot %s: %s has no valid pin (%q); not trimming the local repository", r.ID, sr.Key(), pin)
		}
		live[pin] = true
	}
	return m.dropPins(ctx, live)
}

// dropPins deletes the namespaces of pins not in live and the objects only
// they needed; with none to delete it does nothing.
func (m *mirror) dropPins(ctx context.Context, live map[string]bool) error {
	dead, err := m.deadRefs(live)
	if err != nil || len(dead) == 0 {
		return err
	}
	unlock, err := lockRepo(m.dir)
	if err != nil {
		return err
	}
	defer unlock()
	if err := m.collectGit(ctx, dead); err != nil {
		return err
	}
	stateDir := filepath.Dir(m.dir)
	if err := clearPresent(stateDir); err != nil { // pruned objects may have come from any pack
		return err
	}
	return cleanPackCache(filepath.Join(stateDir, packCacheDir), live)
}

// deadRefs lists the namespaced refs of pins not in keep.
func (m *mirror) deadRefs(keep map[string]bool) ([]plumbing.ReferenceName, error) {
	var dead []plumbing.ReferenceName
	err := m.eachRef(func(r *plumbing.Reference) error {
		if pin := pinOf(r.Name().String()); pin != "" && !keep[pin] {
			dead = append(dead, r.Name())
		}
		return nil
	})
	return dead, err
}

// collectGit deletes refs in one transaction (symbolic ones themselves, not
// their targets) and lets C git repack and prune.
func (m *mirror) collectGit(ctx context.Context, dead []plumbing.ReferenceName) error {
	var cmds strings.Builder
	for _, r := range dead {
		fmt.Fprintf(&cmds, "delete %s\n", r)
	}
	if _, err := m.git.run(ctx, strings.NewReader(cmds.String()), nil, "--git-dir="+m.dir, "update-ref", "--no-deref", "--stdin"); err != nil {
		return err
	}
	_, err := m.git.run(ctx, nil, nil, "--git-dir="+m.dir, "gc", "--prune=now", "--quiet")
	return err
}

// lockRepo takes an exclusive flock(2) on the repository's lock file, held
// while objects are placed (hydrate) or may be dropped (trim, repack), so
// a prune never sees placed packs before the refs that keep them. It dies
// with its process.
func lockRepo(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(filepath.Dir(dir), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(filepath.Join(filepath.Dir(dir), ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	}
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return func() { f.Close() }, nil
}
