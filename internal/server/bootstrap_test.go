package server

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/mirrord/mirrord/internal/snapshot"
)

// .../bootstrap.sh answers with Options.Bootstrap's script for the
// snapshot the URL names, never cached; without a renderer it is a 404.
func TestBootstrapRoute(t *testing.T) {
	type call struct{ id, root string }
	var calls []call
	f := newFixture(t, func(o *Options) {
		o.Bootstrap = func(_ context.Context, rec *snapshot.Record, root string) ([]byte, error) {
			calls = append(calls, call{rec.ID, root})
			if root == "/snapshots/"+t2ID(t) {
				return nil, errors.New("rendering failed")
			}
			return []byte("#!/bin/sh\necho " + rec.ID + "\n"), nil
		}
	})
	for _, tc := range []struct{ path, id, root string }{
		{"/snapshots/" + f.s1 + "/bootstrap.sh", f.s1, "/snapshots/" + f.s1},
		{"/channels/production/bootstrap.sh", f.s1, "/channels/production"},
	} {
		r := f.get(t, tc.path)
		if r.code != 200 || string(r.body) != "#!/bin/sh\necho "+tc.id+"\n" {
			t.Errorf("%s: %d %q", tc.path, r.code, r.body)
		}
		if ct, cc := r.h.Get("Content-Type"), r.h.Get("Cache-Control"); ct != "text/x-shellscript; charset=utf-8" || cc != "no-cache" {
			t.Errorf("%s: Content-Type %q, Cache-Control %q", tc.path, ct, cc)
		}
		if last := calls[len(calls)-1]; last != (call{tc.id, tc.root}) {
			t.Errorf("%s: rendered %+v, want %s at %s", tc.path, last, tc.id, tc.root)
		}
	}
	if r := f.do(t, "HEAD", "/channels/production/bootstrap.sh", nil, ""); r.code != 200 || len(r.body) != 0 {
		t.Errorf("HEAD: %d %q", r.code, r.body)
	}
	if r := f.do(t, "POST", "/channels/production/bootstrap.sh", nil, "x"); r.code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", r.code)
	}
	if r := f.get(t, "/snapshots/"+f.s2+"/bootstrap.sh"); r.code != http.StatusInternalServerError {
		t.Errorf("a failing renderer: %d %q", r.code, r.body)
	}
	if r := f.get(t, "/channels/nope/bootstrap.sh"); r.code != http.StatusNotFound {
		t.Errorf("unknown channel: %d", r.code)
	}
	plain := newFixture(t, nil)
	if r := plain.get(t, "/snapshots/"+plain.s1+"/bootstrap.sh"); r.code != http.StatusNotFound {
		t.Errorf("without Options.Bootstrap: %d %q", r.code, r.body)
	}
}

func t2ID(t *testing.T) string { t.Helper(); return snapshot.FormatID(t2) }
