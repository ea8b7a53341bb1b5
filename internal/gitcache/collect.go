package gitcache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mirrord/mirrord/internal/snapshot"
)

// Collect implements source.Collector. live holds this source's record from
// every snapshot that still exists; every namespace whose pin none of them
// names is deleted, then git reclaims the objects nothing references any
// more (C git `gc --prune=now` when installed, else go-git's prune and
// repack). The top-level refs (upstream's latest state) stay: they are the
// next fetch's base. It must not run beside a sync of the same store (gc
// holds the sync lock); serving beside it is safe.
func (s *Source) Collect(ctx context.Context, stateDir string, live []*snapshot.SourceRecord) error {
	if err := s.collect(ctx, stateDir, live); err != nil {
		return fmt.Errorf("git/%s: collecting %s: %w", s.repo.Name, stateDir, err)
	}
	return nil
}

func (s *Source) collect(ctx context.Context, stateDir string, live []*snapshot.SourceRecord) error {
	keep := map[string]bool{}
	for _, r := range live {
		pin := r.Meta[metaPin]
		if !validPin(pin) {
			return fmt.Errorf("a snapshot record of %s has no valid pin (%q); refusing to delete anything", r.Key(), pin)
		}
		keep[pin] = true
	}
	if _, err := os.Stat(filepath.Join(stateDir, repoDirName)); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	g, gitErr := findGit(s.opt.Git)
	if gitErr != nil {
		g = nil
	}
	m, err := openMirror(stateDir, g)
	if err != nil {
		return err
	}
	dead, err := m.deadRefs(keep)
	if err != nil {
		return err
	}
	if g != nil {
		err = m.collectGit(ctx, dead)
	} else {
		err = m.collectGoGit(dead)
	}
	if err != nil {
		return err
	}
	if err := clearPresent(stateDir); err != nil { // pruned objects may have come from any pack
		return err
	}
	return cleanPackCache(filepath.Join(stateDir, packCacheDir), keep)
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
	if len(dead) > 0 {
		var cmds strings.Builder
		for _, r := range dead {
			fmt.Fprintf(&cmds, "delete %s\n", r)
		}
		if _, err := m.git.run(ctx, strings.NewReader(cmds.String()), nil, "--git-dir="+m.dir, "update-ref", "--no-deref", "--stdin"); err != nil {
			return err
		}
	}
	_, err := m.git.run(ctx, nil, nil, "--git-dir="+m.dir, "gc", "--prune=now", "--quiet")
	return err
}

// collectGoGit is collectGit without C git.
func (m *mirror) collectGoGit(dead []plumbing.ReferenceName) error {
	for _, r := range dead {
		if err := m.repo.Storer.RemoveReference(r); err != nil {
			return fmt.Errorf("removing %s: %w", r, err)
		}
	}
	if err := m.repo.Prune(git.PruneOptions{Handler: m.repo.DeleteObject}); err != nil && !errors.Is(err, git.ErrLooseObjectsNotSupported) {
		return fmt.Errorf("pruning loose objects: %w", err)
	}
	if err := m.repo.RepackObjects(&git.RepackConfig{}); err != nil {
		return fmt.Errorf("repacking: %w", err)
	}
	return nil
}
