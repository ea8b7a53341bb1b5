package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mirrord/mirrord/internal/search"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store/fs"
)

// bigCatalog is 1,000 snapshots of one apt source with 65,000 packages:
// the first 500 have list A, the rest list B (1,000 packages upgraded,
// 100 added). production has 300 moves.
func bigCatalog(t *testing.T) (*Server, []string) {
	t.Helper()
	ctx := context.Background()
	st, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cat := snapshot.New(st)
	var a, b []snapshot.Item
	for i := 0; i < 65000; i++ {
		name := fmt.Sprintf("pkg%05d:amd64", i)
		a = append(a, snapshot.Item{Name: name, Version: "1.0-1"})
		v := "1.0-1"
		if i < 1000 {
			v = "1.1-1"
		}
		b = append(b, snapshot.Item{Name: name, Version: v})
	}
	for i := 0; i < 100; i++ {
		b = append(b, snapshot.Item{Name: fmt.Sprintf("new%03d:amd64", i), Version: "0.1-1"})
	}
	da, err := snapshot.PutItems(ctx, st.Blobs(), a)
	if err != nil {
		t.Fatal(err)
	}
	db, _ := snapshot.PutItems(ctx, st.Blobs(), b)
	tree, _ := snapshot.NewTree(nil)
	td, _ := snapshot.PutTree(ctx, st.Blobs(), tree)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := 0; i < 1000; i++ {
		at := start.Add(time.Duration(i) * time.Hour)
		items, n := da, len(a)
		if i >= 500 {
			items, n = db, len(b)
		}
		rec := snapshot.Record{ID: snapshot.FormatID(at), Created: at, Sources: []snapshot.SourceRecord{{
			Kind: "apt", Name: "big", Upstream: "http://upstream.invalid/debian", Tree: td, Files: 65000, Size: 40 << 30,
			Items: items, NItems: n, Meta: map[string]string{"release.stable": "ab12"}, Synced: at}}}
		data, _ := json.Marshal(rec)
		if err := st.Meta().Create(ctx, "snapshots/"+rec.ID, data); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	for i := 0; i < 300; i++ {
		if _, err := cat.Promote(ctx, "production", ids[i]); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := search.Update(ctx, cat); err != nil || n != 1000 {
		t.Fatalf("indexing: %d, %v", n, err)
	}
	s, err := New(Options{Catalog: cat, Registry: prometheus.NewRegistry(), Version: "test",
		UI: UIOptions{Compare: map[string]func(a, b string) int{"apt": strings.Compare},
			ClientConfig: func(root string, srcs []string) string { return "# " + root + " " + strings.Join(srcs, " ") }}})
	if err != nil {
		t.Fatal(err)
	}
	return s, ids
}

// Every page stays under 1 MB of HTML with 1,000 snapshots and 65,000
// packages in one source, and still shows what it should.
func TestUIPagesStaySmall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a large catalog")
	}
	s, ids := bigCatalog(t)
	first, mid, last := ids[0], ids[500], ids[999]
	for path, want := range map[string][]string{
		"/":                                        {last, "page 1 of 40", "production"},
		"/?page=40":                                {first},
		"/ui/snapshots/" + last:                    {"pkg00000:amd64", "1.1-1", "65100 of 65100", "page 1 of 326"},
		"/ui/snapshots/" + last + "?page=326":      {"pkg64999:amd64"},
		"/ui/snapshots/" + last + "?q=new0":        {"new099:amd64", "100 of 65100"},
		"/ui/diff/" + first + "/" + last:           {"1000 upgraded", "100 added", "600 more changes not shown"},
		"/ui/channels/production":                  {ids[299], "page 1 of 6"},
		"/ui/channels/production?snapshot=" + last: {"1000 upgraded", "Promote " + last + " to production"},
		"/ui/search?q=pkg00042":                    {"1000", last, first},
		"/ui/search?q=new007":                      {"500", mid, last},
	} {
		rec := httptest.NewRecorder()
		start := time.Now()
		s.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		took := time.Since(start)
		body := rec.Body.String()
		if rec.Code != 200 {
			t.Errorf("GET %s: %d %.300s", path, rec.Code, body)
			continue
		}
		if len(body) > 1<<20 {
			t.Errorf("GET %s: %d bytes of HTML, over 1 MB", path, len(body))
		}
		for _, w := range want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q", path, w)
			}
		}
		t.Logf("GET %s: %d KiB in %v", path, len(body)>>10, took.Round(time.Millisecond))
	}
	// The search API counts exactly the snapshots with each version.
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/search?package=pkg00500", nil))
	var ans SearchAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &ans); err != nil {
		t.Fatal(err)
	}
	if len(ans.Results) != 2 || ans.Results[0].Version != "1.0-1" || len(ans.Results[0].Snapshots) != 500 ||
		ans.Results[1].Version != "1.1-1" || len(ans.Results[1].Snapshots) != 500 || ans.Results[1].Snapshots[0] != last {
		t.Errorf("search pkg00500: %+v", ans.Results)
	}
}

// The diff words changes by kind: versions ordered by the kind's compare
// function, git refs moved, file digests shortened; rows are capped.
func TestDiffView(t *testing.T) {
	s := &Server{opt: Options{UI: UIOptions{Compare: map[string]func(a, b string) int{"apt": strings.Compare}}}}
	dig1, dig2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, tc := range []struct {
		d    snapshot.SourceDiff
		want []string // "label name from to"
	}{
		{snapshot.SourceDiff{Source: "apt/d", Status: "changed",
			Changed: []snapshot.ItemChange{{Name: "up", From: "1", To: "2"}, {Name: "down", From: "2", To: "1"}},
			Added:   []snapshot.Item{{Name: "new", Version: "1"}}, Removed: []snapshot.Item{{Name: "old", Version: "1"}}},
			[]string{"upgraded up 1 2", "downgraded down 2 1", "added new  1", "removed old 1 "}},
		{snapshot.SourceDiff{Source: "git/stdlib", Status: "changed", Changed: []snapshot.ItemChange{{Name: "refs/heads/main", From: "c1", To: "c2"}}},
			[]string{"moved refs/heads/main c1 c2"}},
		{snapshot.SourceDiff{Source: "file/images", Status: "changed", Changed: []snapshot.ItemChange{{Name: "disk.img", From: dig1, To: dig2}}},
			[]string{"changed disk.img aaaaaaaaaaaa… bbbbbbbbbbbb…"}},
	} {
		v := s.diffView(tc.d)
		var got []string
		for _, r := range v.Rows {
			got = append(got, r.Label+" "+r.Name+" "+r.From+" "+r.To)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%s: rows %q, want %q", tc.d.Source, got, tc.want)
		}
	}
	var many []snapshot.Item
	for i := 0; i < diffRowsMax+7; i++ {
		many = append(many, snapshot.Item{Name: fmt.Sprint(i), Version: "1"})
	}
	if v := s.diffView(snapshot.SourceDiff{Source: "apt/d", Added: many}); len(v.Rows) != diffRowsMax || v.Cut != 7 || v.Counts[0].N != diffRowsMax+7 {
		t.Errorf("capped diff: %d rows, %d cut, counts %+v", len(v.Rows), v.Cut, v.Counts)
	}
}

// watchSyncs streams two states of sync 1.
type watchSyncs struct{}

func (watchSyncs) Start(context.Context, []string) (int, error) { return 1, nil }
func (watchSyncs) Status(id int) (any, bool) {
	return map[string]any{"id": 1, "state": "succeeded", "snapshot": "20260101T000000Z"}, id == 1
}
func (watchSyncs) Latest() (int, bool) { return 1, true }
func (watchSyncs) Watch(_ context.Context, id int) (<-chan any, bool) {
	if id != 1 {
		return nil, false
	}
	ch := make(chan any, 2)
	ch <- map[string]any{"id": 1, "state": "running", "tasks": []map[string]any{{"name": "file/x", "done": 5}}}
	ch <- map[string]any{"id": 1, "state": "succeeded", "snapshot": "20260101T000000Z"}
	close(ch)
	return ch, true
}

// The events stream is Server-Sent Events: one "status" per state, then
// "end"; the sync page and the overview show the sync.
func TestSyncEvents(t *testing.T) {
	st, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Catalog: snapshot.New(st), Registry: prometheus.NewRegistry(), Syncs: watchSyncs{}})
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		return rec
	}
	rec := get("/api/v1/syncs/1/events")
	want := "event: status\ndata: {\"id\":1,\"state\":\"running\",\"tasks\":[{\"done\":5,\"name\":\"file/x\"}]}\n\n" +
		"event: status\ndata: {\"id\":1,\"snapshot\":\"20260101T000000Z\",\"state\":\"succeeded\"}\n\n" +
		"event: end\ndata: {}\n\n"
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/event-stream" || rec.Body.String() != want {
		t.Errorf("events: %d %q\n%s", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String())
	}
	if rec := get("/api/v1/syncs/2/events"); rec.Code != 404 {
		t.Errorf("events of an unknown sync: %d", rec.Code)
	}
	for _, path := range []string{"/ui/syncs/1", "/"} {
		if rec := get(path); rec.Code != 200 || !strings.Contains(rec.Body.String(), "20260101T000000Z") || !strings.Contains(rec.Body.String(), "succeeded") {
			t.Errorf("%s: %d, lacks the sync's result", path, rec.Code)
		}
	}
	if rec := get("/ui/syncs/7"); rec.Code != 404 {
		t.Errorf("unknown sync page: %d", rec.Code)
	}
}
