package gitcache

import (
	"context"
	"maps"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/faultproxy"
	"github.com/mirrord/mirrord/internal/gitcache/gittest"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/source"
)

// TestTransientUpstreamFaultsAreRetried: a 5xx burst, a 429, a reset, a
// cut body and a damaged pack on the first try of each request are
// retried and the sync gets the upstream's refs; without retries the same
// fault fails the sync naming the upstream.
func TestTransientUpstreamFaultsAreRetried(t *testing.T) {
	up := gittest.NewUpstream(t, "up")
	gittest.Populate(t, up, 20)
	for _, k := range []faultproxy.Kind{faultproxy.ServerErrors, faultproxy.TooManyRequest, faultproxy.ResetMidBody, faultproxy.Truncated} {
		t.Run(k.String(), func(t *testing.T) {
			for _, retries := range []int{0, 2} {
				p := faultproxy.New(t, up.URL, faultproxy.Options{Kind: k})
				src, err := New(Repo{Name: "up", URL: p.URL}, Options{CacheDir: t.TempDir(), Retries: retries})
				if err != nil {
					t.Fatal(err)
				}
				env := &source.Env{Blobs: newBlobs(t), Progress: progress.Discard(), Log: testLogger(t)}
				res, err := src.Sync(context.Background(), env)
				switch {
				case retries == 0 && err == nil:
					t.Errorf("without retries the fault was not noticed")
				case retries == 0 && !strings.Contains(err.Error(), p.URL):
					t.Errorf("the failure does not name the upstream: %v", err)
				case retries > 0 && err != nil:
					t.Errorf("with %d retries: %v", retries, err)
				case retries > 0:
					want := up.Refs(t)
					delete(want, "HEAD")
					got := maps.Clone(res.Refs)
					delete(got, "HEAD")
					if !maps.Equal(got, want) {
						t.Errorf("refs after retrying: %v, want %v", got, want)
					}
				}
			}
		})
	}
}
