package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// recordingExporter stands in for internal/bundle's Exporter (test/e2e runs
// the real one): it writes a line naming what it was asked for, or fails
// after its first write when fail is set.
type recordingExporter struct{ fail bool }

func (x recordingExporter) Export(_ context.Context, w io.Writer, id, since string) error {
	fmt.Fprintf(w, "bundle of %s since %q\n", id, since)
	if x.fail {
		return errors.New("disk on fire")
	}
	return nil
}

func TestExportAPI(t *testing.T) {
	f := newFixture(t, func(o *Options) { o.Exporter = recordingExporter{} })
	auth := map[string]string{"Authorization": "Bearer " + testToken}
	path := "/api/v1/snapshots/" + f.s2 + "/export?since=" + f.s1
	for _, tc := range []struct {
		path string
		hdr  map[string]string
		code int
		want string
	}{
		{path, nil, http.StatusUnauthorized, "bearer token"},
		{path, auth, http.StatusOK, fmt.Sprintf("bundle of %s since %q\n", f.s2, f.s1)},
		{"/api/v1/snapshots/" + f.s2 + "/export", auth, http.StatusOK, fmt.Sprintf("bundle of %s since \"\"\n", f.s2)},
		{"/api/v1/snapshots/20000101T000000Z/export", auth, http.StatusNotFound, "20000101T000000Z"},
		{"/api/v1/snapshots/" + f.s2 + "/export?since=20000101T000000Z", auth, http.StatusNotFound, "since: snapshot 20000101T000000Z"},
		{"/api/v1/snapshots/" + f.s2 + "/export?since=yesterday", auth, http.StatusBadRequest, "since:"},
		{"/api/v1/snapshots/latest/export", auth, http.StatusBadRequest, "malformed snapshot ID"},
	} {
		r := f.do(t, "GET", tc.path, tc.hdr, "")
		if r.code != tc.code || !strings.Contains(string(r.body), tc.want) {
			t.Errorf("GET %s: %d %q; want %d with %q", tc.path, r.code, r.body, tc.code, tc.want)
		}
		if r.code == http.StatusOK && (r.h.Get("Content-Type") != "application/zstd" || !strings.Contains(r.h.Get("Content-Disposition"), "mirrord-"+f.s2)) {
			t.Errorf("GET %s: headers %v", tc.path, r.h)
		}
	}
	if r := f.do(t, "POST", path, auth, ""); r.code != http.StatusMethodNotAllowed {
		t.Errorf("POST export: %d", r.code)
	}

	none := newFixture(t, nil)
	if r := none.do(t, "GET", path, auth, ""); r.code != http.StatusNotImplemented {
		t.Errorf("export without an Exporter: %d, want 501", r.code)
	}

	// Failing mid-stream cuts the connection: the client sees an error,
	// not a short body that looks complete.
	bad := newFixture(t, func(o *Options) { o.Exporter = recordingExporter{fail: true} })
	req, _ := http.NewRequest("GET", bad.ts.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err := http.DefaultClient.Do(req)
	if err == nil {
		_, err = io.ReadAll(res.Body)
		res.Body.Close()
	}
	if err == nil {
		t.Error("an export failing mid-stream ended like a complete response")
	}
}
