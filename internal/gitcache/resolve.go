package gitcache

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5"
	gitconfig "github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
)

// Keys of SourceRecord.Meta a git source writes besides the pin: the
// entry's dest and ref as configured (defaults filled in: the repo name,
// "HEAD") and the commit that ref resolved to in this snapshot.
const (
	metaDest   = "dest"
	metaRef    = "ref"
	metaCommit = "commit"
)

// headRef is what Meta["ref"] says when no ref is configured: the
// upstream's HEAD, as `git clone` checks out.
const headRef = "HEAD"

// commitRefPrefix holds, in a snapshot's ref set, the commits entries name
// by id: a ref keeps the commit's objects (also one on no branch) and makes
// it fetchable from the snapshot.
const commitRefPrefix = "refs/mirrord/commits/"

// isCommitID reports whether ref is a full (40 hex digit) commit id.
func isCommitID(ref string) bool {
	if len(ref) != 40 {
		return false
	}
	return strings.Trim(strings.ToLower(ref), "0123456789abcdef") == ""
}

// pinnedCommit returns the configured ref when it is a commit id, else "".
func (s *Source) pinnedCommit() string {
	if isCommitID(s.repo.Ref) {
		return strings.ToLower(s.repo.Ref)
	}
	return ""
}

// withCommit returns rs plus the ref that keeps commit id, if any.
func (rs RefSet) withCommit(id string) RefSet {
	if id == "" {
		return rs
	}
	out := RefSet{Refs: make(map[string]string, len(rs.Refs)+1), Head: rs.Head}
	for n, v := range rs.Refs {
		out.Refs[n] = v
	}
	out.Refs[commitRefPrefix+id] = id
	return out
}

// ensureCommit makes sure commit id is in the repository and protected by
// a top-level ref: fetched by id when missing (the upstream must allow
// fetching a commit that no ref advertises, as forges do).
func (m *mirror) ensureCommit(ctx context.Context, url string, auth transport.AuthMethod, id string) error {
	ref := plumbing.ReferenceName(commitRefPrefix + id)
	h := plumbing.NewHash(id)
	if _, err := m.repo.CommitObject(h); err != nil {
		spec := gitconfig.RefSpec(id + ":" + ref.String())
		err := m.remote(url).FetchContext(ctx, &git.FetchOptions{RefSpecs: []gitconfig.RefSpec{spec}, Auth: auth, Tags: git.NoTags})
		if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
			return fmt.Errorf("commit %s is not a commit of the upstream's branches or tags, and fetching it by id failed: %w", id, err)
		}
		if _, err := m.repo.CommitObject(h); err != nil {
			return fmt.Errorf("commit %s: the upstream sent no such commit: %w", id, err)
		}
	}
	if err := m.repo.Storer.SetReference(plumbing.NewHashReference(ref, h)); err != nil {
		return fmt.Errorf("keeping commit %s: %w", id, err)
	}
	return nil
}

// resolveRef returns the commit ref names in rs, as `git checkout REF`
// after a clone would find it: a full commit id, a branch, a tag (peeled),
// or a full ref name; "" means HEAD. rs's objects must be in the
// repository.
func (m *mirror) resolveRef(rs RefSet, ref string) (string, error) {
	var id string
	switch {
	case ref == "" || ref == headRef:
		if rs.Head == "" {
			if len(rs.Refs) == 0 {
				return "", nil // an empty upstream: nothing to check out
			}
			return "", errors.New("no ref is set and the upstream has no HEAD: set ref to a branch, tag or commit")
		}
		id = rs.Refs[rs.Head]
	case isCommitID(ref):
		id = rs.Refs[commitRefPrefix+strings.ToLower(ref)]
	default:
		for _, full := range []string{"refs/heads/" + ref, "refs/tags/" + ref, ref} {
			if v, ok := rs.Refs[full]; ok {
				id = v
				break
			}
		}
	}
	if id == "" {
		return "", fmt.Errorf("ref %q not found: the upstream has no branch, tag or commit of that name (%s)", ref, rs.summary())
	}
	c, err := m.peel(id)
	if err != nil {
		return "", fmt.Errorf("ref %q (%s): %w", ref, id, err)
	}
	return c, nil
}

// peel follows annotated tags to the commit they name.
func (m *mirror) peel(id string) (string, error) {
	h := plumbing.NewHash(id)
	for range 16 {
		obj, err := m.repo.Object(plumbing.AnyObject, h)
		if err != nil {
			return "", fmt.Errorf("reading object %s: %w", h, err)
		}
		switch o := obj.(type) {
		case *object.Commit:
			return o.Hash.String(), nil
		case *object.Tag:
			h = o.Target
		default:
			return "", fmt.Errorf("object %s is a %s, not a commit", h, obj.Type())
		}
	}
	return "", fmt.Errorf("tag %s: tags nested too deeply", id)
}

// summary names a few branches and tags of rs, for "not found" messages.
func (rs RefSet) summary() string {
	var heads, tags []string
	for _, n := range rs.names() {
		if b, ok := strings.CutPrefix(n, "refs/heads/"); ok {
			heads = append(heads, b)
		} else if t, ok := strings.CutPrefix(n, "refs/tags/"); ok {
			tags = append(tags, t)
		}
	}
	list := func(what string, xs []string) string {
		if len(xs) == 0 {
			return "no " + what
		}
		const show = 10
		s := what + " " + strings.Join(xs[:min(show, len(xs))], ", ")
		if len(xs) > show {
			s += fmt.Sprintf(" and %d more", len(xs)-show)
		}
		return s
	}
	slices.Reverse(tags) // newest-looking first
	return list("branches", heads) + "; " + list("tags", tags)
}
