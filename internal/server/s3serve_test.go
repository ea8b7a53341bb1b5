package server

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mirrord/mirrord/internal/store"
)

func TestPresignRedirect(t *testing.T) {
	f := newFixture(t, func(o *Options) {
		o.Presign = func(_ context.Context, d store.Digest) (string, error) {
			if strings.HasPrefix(string(d), "0") {
				return "", fmt.Errorf("presign: %w", store.ErrUnavailable)
			}
			return "http://bucket.example/blobs/" + string(d) + "?X-Amz-Signature=x", nil
		}
	})
	p := "/snapshots/" + f.s2 + "/file/images/large.bin"
	d := store.DigestOf(f.files["file/images/large.bin"])
	r := f.get(t, p)
	if r.code != 302 || r.h.Get("Location") != "http://bucket.example/blobs/"+string(d)+"?X-Amz-Signature=x" {
		t.Fatalf("GET with presign: %d Location %q", r.code, r.h.Get("Location"))
	}
	if cc := r.h.Get("Cache-Control"); strings.Contains(cc, "immutable") {
		t.Errorf("a redirect to an expiring URL is cached as immutable: %q", cc)
	}
	r = f.do(t, "GET", p, map[string]string{"If-None-Match": etag(d)}, "")
	if r.code != 304 || r.h.Get("Etag") != etag(d) {
		t.Errorf("conditional GET with presign: %d %v", r.code, r.h)
	}
	if r := f.do(t, "HEAD", p, nil, ""); r.code != 200 || r.h.Get("Content-Length") != fmt.Sprint(1<<20) {
		t.Errorf("HEAD with presign: %d %v", r.code, r.h)
	}
}

func TestUnavailableIs503(t *testing.T) {
	if got := statusOf(fmt.Errorf("stat: %w: s3://b/ at http://x", store.ErrUnavailable)); got != 503 {
		t.Errorf("statusOf(ErrUnavailable) = %d, want 503", got)
	}
}

func TestPublicKeyFunc(t *testing.T) {
	key := []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\nfrom the store\n-----END PGP PUBLIC KEY BLOCK-----\n")
	var fail atomic.Bool
	f := newFixture(t, func(o *Options) {
		o.PublicKey = nil
		o.PublicKeyFunc = func(context.Context) ([]byte, error) {
			if fail.Load() {
				return nil, fmt.Errorf("reading the store's key: %w", store.ErrUnavailable)
			}
			return key, nil
		}
	})
	r := f.get(t, "/keys/mirrord.asc")
	if r.code != 200 || string(r.body) != string(key) || r.h.Get("Etag") != etag(store.DigestOf(key)) {
		t.Errorf("/keys/mirrord.asc = %d %q", r.code, r.body)
	}
	fail.Store(true)
	if r := f.get(t, "/keys/mirrord.asc"); r.code != 503 {
		t.Errorf("/keys/mirrord.asc with the store down = %d", r.code)
	}
}
