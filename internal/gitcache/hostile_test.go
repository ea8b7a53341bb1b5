package gitcache

import (
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/gitcache/gittest"
)

// An upstream that advertises refs outside refs/heads and refs/tags,
// including names mirrord uses itself (refs/namespaces/<pin>/...,
// refs/mirrord/...): none is fetched, recorded or served, so an upstream
// cannot plant a ref set in another snapshot's pin or shadow HEAD.
func TestForeignRefsIgnored(t *testing.T) {
	t.Parallel()
	f := newFixture(t, 20)
	main := strings.TrimSpace(gittest.Git(t, f.up.Dir, "rev-parse", "refs/heads/main"))
	first := strings.TrimSpace(gittest.Git(t, f.up.Dir, "rev-list", "--max-parents=0", "refs/heads/main"))
	foreign := []string{
		"refs/namespaces/" + strings.Repeat("ab", 32) + "/refs/heads/main",
		"refs/mirrord/no-head", "refs/remotes/origin/evil", "refs/notes/commits",
		"refs/pull/9/head", "refs/keep-around/" + first,
	}
	for _, ref := range foreign {
		gittest.Git(t, f.up.Dir, "update-ref", ref, first)
	}
	rec := f.sync("s1", nil)
	for ref := range rec.Refs {
		if ref != "HEAD" && !strings.HasPrefix(ref, "refs/heads/") && !strings.HasPrefix(ref, "refs/tags/") {
			t.Errorf("recorded foreign ref %s", ref)
		}
	}
	if rec.Refs["refs/heads/main"] != main {
		t.Errorf("main = %s, want %s", rec.Refs["refs/heads/main"], main)
	}
	mirror := gittest.Git(t, "", "--git-dir="+f.state+"/repo.git", "for-each-ref", "--format=%(refname)")
	for _, ref := range foreign {
		if strings.Contains(mirror, ref) && !strings.HasPrefix(ref, "refs/mirrord/") {
			t.Errorf("the mirror holds upstream's %s:\n%s", ref, mirror)
		}
	}
	served := lsRemote(t, f.url("s1"))
	for ref := range served {
		if ref != "HEAD" && !strings.HasPrefix(ref, "refs/heads/") && !strings.HasPrefix(ref, "refs/tags/") {
			t.Errorf("the snapshot serves foreign ref %s", ref)
		}
	}
}
