package gitcache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// repoDirName is the bare repository inside a source's state dir.
const repoDirName = "repo.git"

// fetchSpecs are what a mirror follows: branches and tags, forced, never
// refs/pull/* or other upstream-private namespaces.
func fetchSpecs() []gitconfig.RefSpec {
	return []gitconfig.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"}
}

// noHead is the dangling target of a namespace's HEAD when the upstream had
// none: a namespace needs a HEAD to count as complete, and an unresolvable
// one is simply not advertised.
const noHead = "refs/mirrord/no-head"

// mirror is the bare repository of one source. Its top-level refs/heads and
// refs/tags follow upstream (pruned); refs/namespaces/<pin>/ hold the ref
// sets snapshots recorded, so their objects are never collected.
type mirror struct {
	dir  string
	repo *git.Repository
	git  *gitCmd // nil when C git is not installed
}

// openMirror opens the bare repository under stateDir, creating it (in a
// temporary directory renamed into place, so a crash never leaves a half
// initialised repo) when absent.
func openMirror(stateDir string, g *gitCmd) (*mirror, error) {
	dir := filepath.Join(stateDir, repoDirName)
	repo, err := git.PlainOpen(dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		repo, err = initMirror(stateDir, dir)
	}
	if err != nil {
		return nil, fmt.Errorf("opening bare repository %s: %w", dir, err)
	}
	return &mirror{dir: dir, repo: repo, git: g}, nil
}

func initMirror(stateDir, dir string) (*git.Repository, error) {
	if err := os.MkdirAll(stateDir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp(stateDir, ".init-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if _, err := git.PlainInit(tmp, true); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "HEAD")); serr != nil {
			return nil, err
		}
		// Another process or request created it first.
	}
	return git.PlainOpen(dir)
}

func (m *mirror) remote(url string) *git.Remote {
	return git.NewRemote(m.repo.Storer, &gitconfig.RemoteConfig{Name: "upstream", URLs: []string{url}, Fetch: fetchSpecs()})
}

// list reads upstream's ref advertisement without fetching anything.
func (m *mirror) list(ctx context.Context, url string, auth transport.AuthMethod) (RefSet, error) {
	refs, err := m.remote(url).ListContext(ctx, &git.ListOptions{Auth: auth})
	if errors.Is(err, transport.ErrEmptyRemoteRepository) {
		return RefSet{Refs: map[string]string{}}, nil
	}
	if err != nil {
		return RefSet{}, fmt.Errorf("listing refs: %w", err)
	}
	return newRefSet(refs), nil
}

// fetch brings the top-level refs up to date with upstream (forced updates
// and deletions followed) and returns them; head is HEAD's target as listed.
func (m *mirror) fetch(ctx context.Context, url string, auth transport.AuthMethod, head string) (RefSet, error) {
	err := m.remote(url).FetchContext(ctx, &git.FetchOptions{
		RefSpecs: fetchSpecs(), Auth: auth, Prune: true, Force: true, Tags: git.NoTags,
	})
	switch {
	case errors.Is(err, transport.ErrEmptyRemoteRepository):
		if err := m.dropLive(); err != nil {
			return RefSet{}, err
		}
	case err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate):
		return RefSet{}, fmt.Errorf("fetching: %w", err)
	}
	rs, err := m.live()
	if err != nil {
		return RefSet{}, err
	}
	if _, ok := rs.Refs[head]; ok {
		rs.Head = head
	}
	return rs, nil
}

// live returns the top-level branches and tags.
func (m *mirror) live() (RefSet, error) {
	rs := RefSet{Refs: map[string]string{}}
	err := m.eachRef(func(r *plumbing.Reference) error {
		if r.Type() == plumbing.HashReference && mirrored(r.Name().String()) {
			rs.Refs[r.Name().String()] = r.Hash().String()
		}
		return nil
	})
	return rs, err
}

// dropLive deletes the top-level branches and tags (upstream became empty).
func (m *mirror) dropLive() error {
	rs, err := m.live()
	if err != nil {
		return err
	}
	for n := range rs.Refs {
		if err := m.repo.Storer.RemoveReference(plumbing.ReferenceName(n)); err != nil {
			return fmt.Errorf("removing %s: %w", n, err)
		}
	}
	return nil
}

func (m *mirror) eachRef(fn func(*plumbing.Reference) error) error {
	iter, err := m.repo.Storer.IterReferences()
	if err != nil {
		return fmt.Errorf("reading refs of %s: %w", m.dir, err)
	}
	defer iter.Close()
	return iter.ForEach(fn)
}

// pinned reports whether the namespace of rs's pin holds exactly rs, so
// every object rs needs is present and protected.
func (m *mirror) pinned(rs RefSet) (bool, error) {
	prefix := namespacePrefix(rs.Pin())
	found, head := 0, ""
	err := m.eachRef(func(r *plumbing.Reference) error {
		name, ok := strings.CutPrefix(r.Name().String(), prefix)
		switch {
		case !ok:
		case name == "HEAD" && r.Type() == plumbing.SymbolicReference:
			head = strings.TrimPrefix(r.Target().String(), prefix)
			if head == noHead {
				head = ""
			}
		case r.Type() == plumbing.HashReference && rs.Refs[name] == r.Hash().String():
			found++
		}
		return nil
	})
	return err == nil && found == len(rs.Refs) && head == rs.Head, err
}

// pin writes rs under refs/namespaces/<pin>/, HEAD as a symbolic ref inside
// the namespace (git's upload-pack advertises it with symref=HEAD:...). The
// namespace's HEAD is written last: pinned treats a namespace without it as
// incomplete.
func (m *mirror) pin(rs RefSet) error {
	pin := rs.Pin()
	for _, n := range rs.names() {
		ref := plumbing.NewHashReference(namespaceRef(pin, n), plumbing.NewHash(rs.Refs[n]))
		if err := m.repo.Storer.SetReference(ref); err != nil {
			return fmt.Errorf("pinning %s: %w", n, err)
		}
	}
	head := namespaceRef(pin, "HEAD")
	target := rs.Head
	if target == "" {
		target = noHead
	}
	if err := m.repo.Storer.SetReference(plumbing.NewSymbolicReference(head, namespaceRef(pin, target))); err != nil {
		return fmt.Errorf("pinning HEAD: %w", err)
	}
	return nil
}
