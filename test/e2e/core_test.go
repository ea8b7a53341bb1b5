package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var idRE = regexp.MustCompile(`^\d{8}T\d{6}Z$`)

type fileSpec struct {
	path string
	data []byte
}

func fileConfig(upURL string, files ...fileSpec) string {
	var b strings.Builder
	fmt.Fprintf(&b, "data_dir: data\nauth: {token_file: token}\nsync: {concurrency: 4, per_host: 4, retries: 1}\nfile:\n  - name: images\n    files:\n")
	for _, f := range files {
		fmt.Fprintf(&b, "      - url: %s/%s\n        path: %s\n        sha256: %s\n", upURL, f.path, f.path, sha(f.data))
	}
	return b.String()
}

func randBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	return b
}

func (e *env) sync(args ...string) string {
	e.t.Helper()
	id := strings.TrimSpace(e.must(append([]string{"sync"}, args...)...))
	if !idRE.MatchString(id) {
		e.t.Fatalf("sync printed %q, want a snapshot ID", id)
	}
	return id
}

type showJSON struct {
	ID      string `json:"id"`
	Sources []struct {
		Kind, Name string
		Tree       string `json:"tree"`
		Items      string `json:"item_list"`
		NItems     int    `json:"items"`
	} `json:"sources"`
}

func (e *env) show(id string) showJSON {
	e.t.Helper()
	var s showJSON
	if err := json.Unmarshal([]byte(e.must("snapshot", "show", "--json", id)), &s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

// waitBody polls url until it serves want (channels follow promotions made
// by another process within the server's refresh interval).
func waitBody(t *testing.T, url string, want []byte) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for {
		resp, body := get(t, url, nil)
		if resp.StatusCode == 200 && bytes.Equal(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: status %d, %d bytes; want the expected %d bytes", url, resp.StatusCode, len(body), len(want))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestEndToEnd(t *testing.T) {
	up := newUpstream(t)
	disk1, hello := randBytes(1, 300<<10), []byte("hello, mirror\n")
	up.set("disk.img", disk1)
	up.set("hello.txt", hello)
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.dir, "token"), []byte("s3cret\n"), 0o600)
	e.writeConfig(fileConfig(up.URL, fileSpec{"disk.img", disk1}, fileSpec{"hello.txt", hello}))

	id1 := e.sync()
	base := e.serve(freePort(t))
	url1 := base + "/snapshots/" + id1 + "/file/images/disk.img"

	resp, body := get(t, url1, nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, disk1) {
		t.Fatalf("GET %s: %d, %d bytes", url1, resp.StatusCode, len(body))
	}
	etag := resp.Header.Get("ETag")
	if etag != `"`+sha(disk1)+`"` {
		t.Errorf("ETag %q, want the sha256", etag)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("snapshot Cache-Control %q, want immutable", cc)
	}
	resp, body = get(t, url1, map[string]string{"Range": "bytes=1000-1999"})
	if resp.StatusCode != 206 || !bytes.Equal(body, disk1[1000:2000]) {
		t.Errorf("Range: status %d, body matches %v", resp.StatusCode, bytes.Equal(body, disk1[1000:2000]))
	}
	resp, _ = get(t, url1, map[string]string{"If-None-Match": etag})
	if resp.StatusCode != 304 {
		t.Errorf("If-None-Match: status %d, want 304", resp.StatusCode)
	}
	checkTraversal(t, base, id1)

	e.must("snapshot", "promote", id1, "production")
	chanURL := base + "/channels/production/file/images/disk.img"
	waitBody(t, chanURL, disk1)
	if resp, _ := get(t, chanURL, nil); !strings.Contains(resp.Header.Get("Cache-Control"), "no-cache") {
		t.Errorf("channel Cache-Control %q, want no-cache", resp.Header.Get("Cache-Control"))
	}

	// Upstream changes: a new disk image and a new file.
	disk2, extra := randBytes(2, 200<<10), []byte("new file\n")
	up.set("disk.img", disk2)
	up.set("extra.txt", extra)
	e.writeConfig(fileConfig(up.URL, fileSpec{"disk.img", disk2}, fileSpec{"hello.txt", hello}, fileSpec{"extra.txt", extra}))
	id2 := e.sync()
	diff := e.must("snapshot", "diff", id1, id2)
	for _, want := range []string{"~ disk.img " + sha(disk1) + " -> " + sha(disk2), "+ extra.txt " + sha(extra), "file/images: changed"} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	// The old snapshot still serves the old content.
	if _, body := get(t, url1, nil); !bytes.Equal(body, disk1) {
		t.Error("old snapshot no longer serves its content")
	}
	e.must("snapshot", "promote", id2, "production")
	waitBody(t, chanURL, disk2)
	if out := e.must("snapshot", "rollback", "production"); !strings.Contains(out, id1) {
		t.Errorf("rollback printed %q, want %s", out, id1)
	}
	waitBody(t, chanURL, disk1)

	// gc after deleting id2 removes exactly what only id2 referenced.
	tree2 := e.show(id2).Sources[0].Tree
	if r := e.run("snapshot", "delete", id1); r.code != 4 || !strings.Contains(r.stderr, "production") {
		t.Errorf("delete of a promoted snapshot: exit %d, %q; want exit 4 naming the channel", r.code, r.stderr)
	}
	e.must("snapshot", "delete", id2)
	before := e.blobs()
	e.must("gc", "--grace", "0s")
	after := e.blobs()
	var gone []string
	for d := range before {
		if !after[d] {
			gone = append(gone, d)
		}
	}
	want := map[string]bool{sha(disk2): true, sha(extra): true, tree2: true}
	if len(gone) != len(want) {
		t.Errorf("gc deleted %d blobs %v, want exactly %v", len(gone), gone, want)
	}
	for _, d := range gone {
		if !want[d] {
			t.Errorf("gc deleted %s, which it should have kept", d)
		}
	}
	if out := e.must("verify"); !strings.Contains(out, "0 problems") {
		t.Errorf("verify after gc: %s", out)
	}
}

// checkTraversal tries to escape the snapshot tree; every attempt must be
// refused without serving anything from outside it.
func checkTraversal(t *testing.T, base, id string) {
	t.Helper()
	for _, p := range []string{
		"/snapshots/" + id + "/file/images/../../../../../etc/passwd",
		"/snapshots/" + id + "/file/images/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
		"/snapshots/" + id + "/file/images/..%2f..%2f..%2fetc%2fpasswd",
		"/snapshots/" + id + "/file/images/disk.img%00.txt",
		"/snapshots/" + id + "/file/images//etc/passwd",
		"/snapshots/" + id + "/file/images/..\\..\\etc\\passwd",
		"/channels/../../etc/passwd",
		"/snapshots/%2e%2e/%2e%2e/etc/passwd",
	} {
		resp, body := get(t, base+p, nil)
		if resp.StatusCode != 400 && resp.StatusCode != 404 {
			t.Errorf("GET %s: status %d, want 400 or 404", p, resp.StatusCode)
		}
		if bytes.Contains(body, []byte("root:")) {
			t.Errorf("GET %s served /etc/passwd", p)
		}
	}
}

func TestUnchangedUpstreamCostsNothing(t *testing.T) {
	up := newUpstream(t)
	a, b := randBytes(3, 50<<10), randBytes(4, 10<<10)
	up.set("a", a)
	up.set("b", b)
	e := newEnv(t)
	e.writeConfig(fileConfig(up.URL, fileSpec{"a", a}, fileSpec{"b", b}))
	id1 := e.sync()
	blobs1, reqs1 := e.blobs(), up.requests.Load()
	r := e.run("sync")
	if r.code != 0 || strings.TrimSpace(r.stdout) != id1 {
		t.Fatalf("unchanged re-sync: exit %d, printed %q; want exit 0 and the latest ID %s\n%s", r.code, r.stdout, id1, r.stderr)
	}
	if !strings.Contains(r.stderr, "unchanged") {
		t.Errorf("unchanged re-sync did not log 'unchanged':\n%s", r.stderr)
	}
	if n := up.requests.Load() - reqs1; n != 0 {
		t.Errorf("unchanged upstream: second sync made %d requests, want 0", n)
	}
	if blobs2 := e.blobs(); len(blobs2) != len(blobs1) {
		t.Errorf("second sync wrote %d new blobs, want 0", len(blobs2)-len(blobs1))
	}
	var list []struct{ ID string }
	if err := json.Unmarshal([]byte(e.must("snapshot", "list", "--json")), &list); err != nil || len(list) != 1 || list[0].ID != id1 {
		t.Errorf("snapshot list after an unchanged sync: %+v (%v), want just %s", list, err, id1)
	}
	// /metrics counts snapshots and the last sync made by the CLI.
	os.WriteFile(filepath.Join(e.dir, "token"), []byte("s3cret\n"), 0o600)
	base := e.serve(freePort(t))
	_, body := get(t, base+"/metrics", nil)
	for _, want := range []string{"mirrord_snapshots 1", "mirrord_last_successful_sync_timestamp_seconds 1"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// A changed upstream makes a new snapshot, visible at once.
	b2 := randBytes(5, 10<<10)
	up.set("b", b2)
	e.writeConfig(fileConfig(up.URL, fileSpec{"a", a}, fileSpec{"b", b2}))
	if id2 := e.sync(); id2 == id1 {
		t.Errorf("changed upstream: sync printed the old ID %s", id1)
	}
	if _, body := get(t, base+"/metrics", nil); !strings.Contains(string(body), "mirrord_snapshots 2") {
		t.Errorf("/metrics after a CLI sync does not count 2 snapshots")
	}
}

func TestKillDuringSync(t *testing.T) {
	up := newUpstream(t)
	up.delay = 3 * time.Millisecond
	var files []fileSpec
	for i := range 24 {
		f := fileSpec{fmt.Sprintf("f%02d", i), randBytes(int64(100+i), 48<<10)}
		up.set(f.path, f.data)
		files = append(files, f)
	}
	e := newEnv(t)
	e.writeConfig(fileConfig(up.URL, files...))
	// A first, complete sync tells how
	// long a sync takes; kills then land anywhere within that span.
	start := time.Now()
	e.sync()
	span := time.Since(start)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	completed, listed := 0, 1
	for i := range 12 {
		// Every round changes every file, so each sync downloads everything.
		for j := range files {
			files[j].data = randBytes(int64(1000*i+j), 48<<10)
			up.set(files[j].path, files[j].data)
		}
		e.writeConfig(fileConfig(up.URL, files...))
		finished := killedSync(t, e, time.Duration(rng.Int63n(int64(span)*6/5)))
		if finished {
			completed++
		}
		if out := e.must("verify"); !strings.Contains(out, " 0 problems") {
			t.Fatalf("round %d: verify after kill -9: %s", i, out)
		}
		var list []struct{ ID string }
		json.Unmarshal([]byte(e.must("snapshot", "list", "--json")), &list)
		// A sync killed after its record was written (but before it
		// exited) legitimately leaves a complete snapshot.
		switch {
		case finished && len(list) != listed+1:
			t.Fatalf("round %d: sync finished but %d snapshots listed, want %d", i, len(list), listed+1)
		case len(list) < listed || len(list) > listed+1:
			t.Fatalf("round %d: %d snapshots listed after %d", i, len(list), listed)
		}
		listed = len(list)
	}
	id := e.sync()
	if out := e.must("verify", id); !strings.Contains(out, " 0 problems") {
		t.Fatalf("final verify: %s", out)
	}
	t.Logf("sync takes %s; %d of 12 syncs completed before their kill", span, completed)
}

// killedSync starts a sync and kill -9s it after d; it reports whether the
// sync had already finished successfully.
func killedSync(t *testing.T, e *env, d time.Duration) bool {
	t.Helper()
	cmd := exec.Command(mirrordBin, "--config", e.config, "sync")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err == nil
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return false
	}
}

func TestBadConfigAndUpstream(t *testing.T) {
	up := newUpstream(t)
	good := []byte("good")
	up.set("good", good)
	up.set("evil", []byte("tampered"))
	cases := []struct {
		name     string
		config   string
		code     int
		contains []string
	}{
		{"unknown key", "data_dir: data\nfile:\n  - name: x\n    filez: []\n", 2, []string{"mirrord.yaml:4", "filez"}},
		{"wrong type", "data_dir: data\nlisten: [a, b]\n", 2, []string{"mirrord.yaml:2", "listen"}},
		{"path escapes", fmt.Sprintf("data_dir: data\nfile:\n  - name: x\n    files:\n      - url: %s/good\n        path: ../../etc/x\n        sha256: %s\n", up.URL, sha(good)), 2, []string{"path"}},
		{"bad sha256 syntax", fmt.Sprintf("data_dir: data\nfile:\n  - name: x\n    files:\n      - url: %s/good\n        sha256: xyz\n", up.URL), 2, []string{"sha256"}},
		{"checksum mismatch", fmt.Sprintf("data_dir: data\nfile:\n  - name: x\n    files:\n      - url: %s/evil\n        sha256: %s\n", up.URL, sha(good)), 1, []string{"file/x", up.URL + "/evil", "sha256", "differs from the sha256 in the config"}},
		{"upstream 404", fmt.Sprintf("data_dir: data\nfile:\n  - name: x\n    files:\n      - url: %s/missing\n        sha256: %s\n", up.URL, sha(good)), 1, []string{"404", up.URL + "/missing"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.writeConfig(tc.config)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			r := e.runCtx(ctx, "sync")
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d; stderr: %s", r.code, tc.code, r.stderr)
			}
			last := lastLine(r.stderr)
			for _, w := range tc.contains {
				if !strings.Contains(last, w) {
					t.Errorf("error line %q lacks %q", last, w)
				}
			}
			if r.stdout != "" {
				t.Errorf("failed sync printed %q on stdout", r.stdout)
			}
			if tc.code == 1 && strings.Count(r.stderr, last) != 1 {
				t.Errorf("the error is printed %d times:\n%s", strings.Count(r.stderr, last), r.stderr)
			}
			if strings.Contains(last, "differs from the sha256 in the config") && strings.Contains(last, "mid-update") {
				t.Errorf("a config digest mismatch blames the upstream's index: %s", last)
			}
			if tc.code == 1 {
				if out := e.must("snapshot", "list", "--json"); strings.TrimSpace(out) != "[]" {
					t.Errorf("failed sync left a snapshot: %s", out)
				}
			}
		})
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestCLIExitCodes(t *testing.T) {
	up := newUpstream(t)
	a := []byte("a")
	up.set("a", a)
	e := newEnv(t)
	e.writeConfig(fileConfig(up.URL, fileSpec{"a", a}))
	id := e.sync()
	e.must("snapshot", "promote", id, "staging")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"snapshot", "show", "not-an-id"}, 2, "YYYYMMDDTHHMMSSZ"},
		{[]string{"snapshot", "show", "20000101T000000Z"}, 3, "not found"},
		{[]string{"snapshot", "promote", "20000101T000000Z", "staging"}, 3, "not found"},
		{[]string{"snapshot", "rollback", "staging"}, 4, "no previous snapshot"},
		{[]string{"snapshot", "rollback", "nochannel"}, 3, "not found"},
		{[]string{"snapshot", "delete", id}, 4, "staging"},
		{[]string{"snapshot", "promote", id, "Bad Channel"}, 2, "channel name"},
		{[]string{"snapshot", "diff", id}, 2, "accepts 2 arg"},
		{[]string{"sync", "file/nope"}, 2, "no source"},
		{[]string{"--nosuchflag"}, 2, "unknown flag"},
		{[]string{"snapshot", "lst"}, 2, `unknown command "lst" for "mirrord snapshot"; did you mean list?`},
		{[]string{"snapshots"}, 2, `unknown command "snapshots" for "mirrord"; did you mean snapshot?`},
	} {
		r := e.run(tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("mirrord %v: exit %d, stderr %q; want exit %d mentioning %q", tc.args, r.code, r.stderr, tc.code, tc.msg)
		}
	}
	// No config anywhere mirrord looks: the error lists the places.
	if _, err := os.Stat("/etc/mirrord/mirrord.yaml"); err == nil {
		return // an installed package's config would be found
	}
	cmd := exec.Command(mirrordBin, "snapshot", "list")
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(), "MIRRORD_CONFIG=")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "looked at --config (not given), $MIRRORD_CONFIG (not set), ./mirrord.yaml") {
		t.Errorf("no config: %v, %s; want exit 2 naming where mirrord looked", err, out)
	}
}

func TestAPIPromoteAndSync(t *testing.T) {
	up := newUpstream(t)
	a := []byte("version one")
	up.set("a", a)
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.dir, "token"), []byte("tok\n"), 0o600)
	e.writeConfig(fileConfig(up.URL, fileSpec{"a", a}))
	id1 := e.sync()
	base := e.serve(freePort(t))

	post := func(path, body, token string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, out := post("/api/v1/channels/prod/promote", `{"snapshot":"`+id1+`"}`, ""); code != 401 || out["error"] == nil {
		t.Errorf("promote without token: %d %v", code, out)
	}
	if code, out := post("/api/v1/channels/prod/promote", `{"snapshot":"`+id1+`"}`, "tok"); code != 200 {
		t.Fatalf("promote: %d %v", code, out)
	}
	waitBody(t, base+"/channels/prod/file/images/a", a)

	// A broken config file fails the API sync with its error (400), and
	// the server keeps serving.
	e.writeConfig("data_dir: data\nauth: {token_file: token}\nfile: [{name: images, files: [{url: x}]}]\n")
	if code, out := post("/api/v1/syncs", `{}`, "tok"); code != 400 || !strings.Contains(fmt.Sprint(out["error"]), "sha256") {
		t.Errorf("API sync with a broken config: %d %v; want 400 naming the problem", code, out)
	}
	if resp, _ := get(t, base+"/healthz", nil); resp.StatusCode != 200 {
		t.Fatalf("server unhealthy after a bad API sync: %d", resp.StatusCode)
	}
	if code, out := post("/api/v1/syncs", `{"sources":["file/nope"]}`, "tok"); code != 400 {
		t.Errorf("API sync of an unknown source: %d %v; want 400", code, out)
	}
	// The sync uses the config as it is on disk now: a file added since
	// serve started is in the new snapshot.
	b := []byte("added later")
	up.set("b", b)
	e.writeConfig(fileConfig(up.URL, fileSpec{"a", a}, fileSpec{"b", b}))
	// Start a sync through the API and follow it to its snapshot.
	code, out := post("/api/v1/syncs", `{}`, "tok")
	if code != 202 {
		t.Fatalf("POST /api/v1/syncs: %d %v", code, out)
	}
	jobURL := fmt.Sprintf("%s/api/v1/syncs/%v", base, out["id"])
	deadline := time.Now().Add(time.Minute)
	var st map[string]any
	for time.Now().Before(deadline) {
		_, body := get(t, jobURL, nil)
		json.Unmarshal(body, &st)
		if st["state"] != "running" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if st["state"] != "succeeded" || !idRE.MatchString(fmt.Sprint(st["snapshot"])) {
		t.Fatalf("sync job ended %v", st)
	}
	_, body := get(t, base+"/api/v1/snapshots", nil)
	var list []map[string]any
	json.Unmarshal(body, &list)
	if len(list) != 2 {
		t.Errorf("API lists %d snapshots after the API sync, want 2", len(list))
	}
	if resp, body := get(t, fmt.Sprintf("%s/snapshots/%v/file/images/b", base, st["snapshot"]), nil); resp.StatusCode != 200 || !bytes.Equal(body, b) {
		t.Errorf("the API sync did not use the config on disk: file b: %d %q", resp.StatusCode, body)
	}
	if code, _ := post("/api/v1/channels/prod/rollback", ``, "tok"); code != 409 {
		t.Errorf("rollback with no history: %d, want 409", code)
	}
}
