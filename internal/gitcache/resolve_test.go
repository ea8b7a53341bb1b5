package gitcache

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/gitcache/gittest"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/source"
)

// TestRefResolution: each way an entry names its ref resolves to the
// commit git itself finds, is recorded in Meta, and a ref the upstream
// lacks fails the sync naming the entry and the ref.
func TestRefResolution(t *testing.T) {
	up := gittest.NewUpstream(t, "up")
	gittest.Populate(t, up, 30)
	state := filepath.Join(t.TempDir(), "up")
	blobs := newBlobs(t)
	rev := func(r string) string { return gittest.Git(t, up.Dir, "rev-parse", r+"^{commit}") }
	sync := func(ref string) (map[string]string, error) {
		src, err := New(Repo{Name: "up", URL: up.URL, Ref: ref, Dest: "modules/up", Origin: `repos.yaml:7: repo "up" (group "g")`}, Options{ReposYAML: []byte("g:\n  up:\n"), CacheDir: filepath.Dir(state)})
		if err != nil {
			t.Fatal(err)
		}
		env := &source.Env{Blobs: blobs, Progress: progress.Discard(), Log: testLogger(t)}
		res, err := src.Sync(context.Background(), env)
		if err != nil {
			return nil, err
		}
		var paths []string
		for _, e := range res.Entries {
			paths = append(paths, e.Path)
		}
		if !slices.Contains(paths, manifestPath) || !slices.Contains(paths, reposFilePath) || len(chainOf(res.Entries)) != 1 {
			t.Errorf("tree %v, want refs.txt, repos.yaml and one pack", paths)
		}
		return res.Meta, nil
	}
	inHistory := rev("main~7")
	for ref, want := range map[string]string{
		"":               rev("HEAD"),
		"feature":        rev("feature"),
		"v2.0-signed":    rev("v2.0"), // a tag of a tag, peeled
		"light":          rev("light"),
		"refs/heads/old": rev("old"),
		inHistory:        inHistory,
	} {
		meta, err := sync(ref)
		if err != nil {
			t.Errorf("ref %q: %v", ref, err)
			continue
		}
		wantRef := ref
		if ref == "" {
			wantRef = "HEAD"
		}
		if meta[metaCommit] != want || meta[metaRef] != wantRef || meta[metaDest] != "modules/up" {
			t.Errorf("ref %q: meta %v, want commit %s ref %s dest modules/up", ref, meta, want, wantRef)
		}
	}
	for _, ref := range []string{"nope", "main~1", strings.Repeat("0", 40)} {
		_, err := sync(ref)
		if err == nil || !strings.Contains(err.Error(), `repos.yaml:7: repo "up" (group "g"): ref "`+ref+`"`) || !strings.Contains(err.Error(), up.URL) {
			t.Errorf("ref %q: err %v, want one naming the entry, the ref and %s", ref, err, up.URL)
		}
	}
}
