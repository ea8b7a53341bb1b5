package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mirrord/mirrord/internal/apt"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/fs"
)

const testToken = "s3cret-token"

var (
	t1 = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	t2 = time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
)

// fixture is a store with two snapshots (s1 at t1, s2 at t2) and channel
// "production" → s1, served by a real HTTP server.
type fixture struct {
	dir      string
	st       *fs.Store
	cat      *snapshot.Catalog
	srv      *Server
	ts       *httptest.Server
	s1, s2   string
	files    map[string][]byte // "file/images/<path>" of s2 and apt files → content
	v1, v2   []byte            // content of file/images/version.txt in s1 and s2
	extra    []byte            // a blob in the store but in no tree
	changes  atomic.Int32      // OnChange calls
	noFollow *http.Client
}

func randBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func putBlob(tb testing.TB, st store.Store, data []byte) store.Digest {
	tb.Helper()
	d := store.DigestOf(data)
	if _, err := st.Blobs().Put(context.Background(), bytes.NewReader(data), store.Expect{Digest: d, Size: int64(len(data))}); err != nil {
		tb.Fatal(err)
	}
	return d
}

func putSource(tb testing.TB, st store.Store, kind, name string, files map[string][]byte, items []snapshot.Item) snapshot.SourceRecord {
	tb.Helper()
	var es []snapshot.Entry
	var size int64
	for p, data := range files {
		es = append(es, snapshot.Entry{Path: p, Digest: putBlob(tb, st, data), Size: int64(len(data))})
		size += int64(len(data))
	}
	t, err := snapshot.NewTree(es)
	if err != nil {
		tb.Fatal(err)
	}
	td, err := snapshot.PutTree(context.Background(), st.Blobs(), t)
	if err != nil {
		tb.Fatal(err)
	}
	src := snapshot.SourceRecord{Kind: kind, Name: name, Tree: td, Files: len(es), Size: size}
	if items != nil {
		src.Items, err = snapshot.PutItems(context.Background(), st.Blobs(), items)
		if err != nil {
			tb.Fatal(err)
		}
		src.NItems = len(items)
	}
	return src
}

func newFixture(tb testing.TB, mod func(*Options)) *fixture {
	tb.Helper()
	ctx := context.Background()
	f := &fixture{dir: tb.TempDir()}
	st, err := fs.Open(f.dir)
	if err != nil {
		tb.Fatal(err)
	}
	f.st = st
	f.cat = snapshot.New(st)
	now := t1
	f.cat.SetClock(func() time.Time { return now })

	f.v1, f.v2 = []byte("version one\n"), []byte("version two\n")
	images := map[string][]byte{
		"small.bin":       randBytes(2048, 1),
		"big.bin":         randBytes(300<<10, 2),
		"large.bin":       randBytes(1<<20, 3),
		"dir/sub/c.xml":   []byte("<x/>\n"),
		"dir/readme.txt":  []byte("hello\n"),
		"page.html":       []byte("<script>alert(1)</script>"),
		"version.txt":     f.v1,
		"etc/passwd":      []byte("in-tree passwd\n"),
		"name with space": []byte("spaced\n"),
		"my dir/f.txt":    []byte("f\n"),
	}
	aptFiles := map[string][]byte{
		"dists/bookworm/InRelease":                       []byte("Origin: test\n"),
		"dists/bookworm/main/binary-amd64/Packages.xz":   randBytes(1000, 4),
		"pool/main/h/hello/hello_1.0_amd64.deb":          randBytes(5000, 5),
		"dists/bookworm/main/binary-amd64/Packages":      []byte("Package: hello\nVersion: 1.0\n"),
		"dists/bookworm/main/binary-amd64/Release":       []byte("Archive: bookworm\n"),
		"dists/bookworm/main/i18n/Translation-en":        []byte("Package: hello\n"),
		"dists/bookworm/main/binary-amd64/Packages.diff": []byte("x"),
	}
	s1 := []snapshot.SourceRecord{
		putSource(tb, st, "file", "images", images, nil),
		putSource(tb, st, "apt", "debian", aptFiles, []snapshot.Item{{Name: "hello", Version: "1.0"}, {Name: "gone", Version: "1"}}),
	}
	r1, err := f.cat.Commit(ctx, s1)
	if err != nil {
		tb.Fatal(err)
	}
	images2 := map[string][]byte{}
	for k, v := range images {
		images2[k] = v
	}
	images2["version.txt"] = f.v2
	now = t2
	s2 := []snapshot.SourceRecord{
		putSource(tb, st, "file", "images", images2, nil),
		putSource(tb, st, "apt", "debian", aptFiles, []snapshot.Item{{Name: "hello", Version: "2.0"}, {Name: "new", Version: "1"}}),
	}
	r2, err := f.cat.Commit(ctx, s2)
	if err != nil {
		tb.Fatal(err)
	}
	f.s1, f.s2 = r1.ID, r2.ID
	f.files = map[string][]byte{}
	for k, v := range images2 {
		f.files["file/images/"+k] = v
	}
	for k, v := range aptFiles {
		f.files["apt/debian/"+k] = v
	}
	f.extra = []byte("by-hash only content\n")
	putBlob(tb, st, f.extra)
	if _, err := f.cat.Promote(ctx, "production", f.s1); err != nil {
		tb.Fatal(err)
	}
	now = t2.Add(time.Hour)

	opt := Options{
		Catalog:   f.cat,
		PublicKey: []byte("-----BEGIN PGP PUBLIC KEY BLOCK-----\ntest\n-----END PGP PUBLIC KEY BLOCK-----\n"),
		Token:     testToken,
		Version:   "test",
		OnChange:  func(context.Context) { f.changes.Add(1) },
		Kinds:     map[string]KindServer{"apt": apt.Served{}},
	}
	if mod != nil {
		mod(&opt)
	}
	f.srv, err = New(opt)
	if err != nil {
		tb.Fatal(err)
	}
	f.ts = httptest.NewServer(f.srv)
	tb.Cleanup(f.ts.Close)
	f.noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return f
}

type resp struct {
	code int
	h    http.Header
	body []byte
}

func (f *fixture) do(t testing.TB, method, path string, hdr map[string]string, body string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := f.noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp{res.StatusCode, res.Header, b}
}

func (f *fixture) get(t testing.TB, path string) resp { return f.do(t, "GET", path, nil, "") }

// raw sends target verbatim in the request line, so no client cleans it.
func (f *fixture) raw(t *testing.T, target string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", f.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", target)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("%s: %v", target, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func jsonErr(t *testing.T, r resp) string {
	t.Helper()
	if ct := r.h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q, want application/json (body %s)", ct, r.body)
	}
	var e struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(r.body, &e); err != nil || e.Error == "" {
		t.Errorf("error body %q is not {\"error\": ...}", r.body)
	}
	return e.Error
}

func etag(d store.Digest) string { return `"` + string(d) + `"` }

func TestServeFile(t *testing.T) {
	f := newFixture(t, nil)
	lastMod := t2.Format(http.TimeFormat)
	for _, name := range []string{"small.bin", "big.bin", "large.bin"} {
		t.Run(name, func(t *testing.T) {
			want := f.files["file/images/"+name]
			base := "/snapshots/" + f.s2 + "/file/images/" + name
			r := f.get(t, base)
			if r.code != 200 || !bytes.Equal(r.body, want) {
				t.Fatalf("GET: %d, %d bytes; want 200, %d bytes", r.code, len(r.body), len(want))
			}
			checks := map[string]string{
				"Etag":           etag(store.DigestOf(want)),
				"Last-Modified":  lastMod,
				"Cache-Control":  "public, max-age=31536000, immutable",
				"Accept-Ranges":  "bytes",
				"Content-Length": fmt.Sprint(len(want)),
			}
			for k, v := range checks {
				if got := r.h.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}

			h := f.do(t, "HEAD", base, nil, "")
			if h.code != 200 || len(h.body) != 0 || h.h.Get("Content-Length") != fmt.Sprint(len(want)) || h.h.Get("Etag") != checks["Etag"] {
				t.Errorf("HEAD: %d, body %d bytes, Content-Length %q", h.code, len(h.body), h.h.Get("Content-Length"))
			}

			rg := f.do(t, "GET", base, map[string]string{"Range": "bytes=3-1026"}, "")
			if rg.code != 206 || !bytes.Equal(rg.body, want[3:1027]) {
				t.Errorf("Range: %d, %d bytes", rg.code, len(rg.body))
			}
			if cr, w := rg.h.Get("Content-Range"), fmt.Sprintf("bytes 3-1026/%d", len(want)); cr != w {
				t.Errorf("Content-Range = %q, want %q", cr, w)
			}
			suffix := f.do(t, "GET", base, map[string]string{"Range": "bytes=-100"}, "")
			if suffix.code != 206 || !bytes.Equal(suffix.body, want[len(want)-100:]) {
				t.Errorf("suffix Range: %d, %d bytes", suffix.code, len(suffix.body))
			}

			mr := f.do(t, "GET", base, map[string]string{"Range": "bytes=0-9,100-199"}, "")
			if mr.code != 206 {
				t.Fatalf("multi-range: %d", mr.code)
			}
			mt, params, err := mime.ParseMediaType(mr.h.Get("Content-Type"))
			if err != nil || mt != "multipart/byteranges" {
				t.Fatalf("multi-range Content-Type %q", mr.h.Get("Content-Type"))
			}
			mrd := multipart.NewReader(bytes.NewReader(mr.body), params["boundary"])
			for i, part := range [][2]int{{0, 10}, {100, 200}} {
				p, err := mrd.NextPart()
				if err != nil {
					t.Fatalf("part %d: %v", i, err)
				}
				b, _ := io.ReadAll(p)
				if !bytes.Equal(b, want[part[0]:part[1]]) {
					t.Errorf("part %d: wrong bytes", i)
				}
				if cr, w := p.Header.Get("Content-Range"), fmt.Sprintf("bytes %d-%d/%d", part[0], part[1]-1, len(want)); cr != w {
					t.Errorf("part %d Content-Range = %q, want %q", i, cr, w)
				}
			}

			bad := f.do(t, "GET", base, map[string]string{"Range": fmt.Sprintf("bytes=%d-", len(want)+10)}, "")
			if bad.code != 416 {
				t.Errorf("unsatisfiable Range: %d, want 416", bad.code)
			}

			inm := f.do(t, "GET", base, map[string]string{"If-None-Match": checks["Etag"]}, "")
			if inm.code != 304 || len(inm.body) != 0 || inm.h.Get("Etag") != checks["Etag"] {
				t.Errorf("If-None-Match: %d, want 304 with ETag", inm.code)
			}
			other := f.do(t, "GET", base, map[string]string{"If-None-Match": `"other"`}, "")
			if other.code != 200 {
				t.Errorf("If-None-Match other: %d, want 200", other.code)
			}
			ims := f.do(t, "GET", base, map[string]string{"If-Modified-Since": lastMod}, "")
			if ims.code != 304 {
				t.Errorf("If-Modified-Since: %d, want 304", ims.code)
			}
			older := f.do(t, "GET", base, map[string]string{"If-Modified-Since": t1.Format(http.TimeFormat)}, "")
			if older.code != 200 {
				t.Errorf("If-Modified-Since before: %d, want 200", older.code)
			}
		})
	}
}

func TestContentTypes(t *testing.T) {
	f := newFixture(t, nil)
	cases := map[string]string{
		"file/images/dir/sub/c.xml":                               "application/xml",
		"file/images/small.bin":                                   "application/octet-stream",
		"file/images/page.html":                                   "application/octet-stream",
		"file/images/dir/readme.txt":                              "text/plain; charset=utf-8",
		"apt/debian/dists/bookworm/InRelease":                     "text/plain; charset=utf-8",
		"apt/debian/dists/bookworm/main/binary-amd64/Packages.xz": "application/x-xz",
		"apt/debian/pool/main/h/hello/hello_1.0_amd64.deb":        "application/vnd.debian.binary-package",
		"apt/debian/dists/bookworm/main/i18n/Translation-en":      "text/plain; charset=utf-8",
	}
	for p, want := range cases {
		r := f.get(t, "/snapshots/"+f.s2+"/"+p)
		if r.code != 200 || r.h.Get("Content-Type") != want {
			t.Errorf("%s: %d %q, want 200 %q", p, r.code, r.h.Get("Content-Type"), want)
		}
		if r.h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: no nosniff", p)
		}
	}
}

func TestChannelServing(t *testing.T) {
	const refresh = 100 * time.Millisecond
	f := newFixture(t, func(o *Options) { o.RefreshInterval = refresh })
	r := f.get(t, "/channels/production/file/images/version.txt")
	if r.code != 200 || !bytes.Equal(r.body, f.v1) {
		t.Fatalf("channel file: %d %q", r.code, r.body)
	}
	if cc := r.h.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("channel Cache-Control = %q, want no-cache", cc)
	}
	et := r.h.Get("Etag")
	if et != etag(store.DigestOf(f.v1)) {
		t.Errorf("channel ETag = %q", et)
	}
	if r := f.do(t, "GET", "/channels/production/file/images/version.txt", map[string]string{"If-None-Match": et}, ""); r.code != 304 {
		t.Errorf("channel revalidation: %d, want 304", r.code)
	}
	big := f.get(t, "/channels/production/file/images/big.bin")
	if big.code != 200 || big.h.Get("Cache-Control") != "no-cache" || !bytes.Equal(big.body, f.files["file/images/big.bin"]) {
		t.Errorf("channel big file: %d %q", big.code, big.h.Get("Cache-Control"))
	}
	for _, p := range []string{"/channels/nope/file/images/version.txt", "/channels/nope/", "/channels/production/file/images/missing"} {
		r := f.get(t, p)
		if r.code != 404 {
			t.Errorf("%s: %d, want 404", p, r.code)
		}
		jsonErr(t, r)
	}
	if r := f.get(t, "/channels/production/file/images/dir"); r.code != 301 || r.h.Get("Location") != "/channels/production/file/images/dir/" || r.h.Get("Cache-Control") != "no-cache" {
		t.Errorf("channel dir redirect: %d %q %q", r.code, r.h.Get("Location"), r.h.Get("Cache-Control"))
	}
	if r := f.get(t, "/channels/"); r.code != 200 || !strings.Contains(string(r.body), "production/") {
		t.Errorf("channel list: %d", r.code)
	}

	// Another process (a second catalog on the same directory) promotes.
	st2, err := fs.Open(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	cat2 := snapshot.New(st2)
	if _, err := cat2.Promote(context.Background(), "production", f.s2); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for {
		r := f.get(t, "/channels/production/file/images/version.txt")
		if bytes.Equal(r.body, f.v2) {
			break
		}
		// Due within refresh (plus a reload); allow slack for a busy machine.
		if time.Since(start) > refresh+time.Second {
			t.Fatalf("channel still serves %q %s after an outside promotion", r.body, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("outside promotion served after %s", time.Since(start).Round(time.Millisecond))
	if _, err := cat2.Promote(context.Background(), "staging", f.s1); err != nil {
		t.Fatal(err)
	}
	time.Sleep(refresh + 50*time.Millisecond)
	if r := f.get(t, "/channels/staging/file/images/version.txt"); r.code != 200 || !bytes.Equal(r.body, f.v1) {
		t.Errorf("new outside channel: %d %q", r.code, r.body)
	}
}

func TestAtOrBeforeRedirect(t *testing.T) {
	f := newFixture(t, nil)
	between := snapshot.FormatID(t1.Add(24 * time.Hour))
	r := f.get(t, "/snapshots/"+between+"/file/images/name%20with%20space?x=1")
	if r.code != 302 {
		t.Fatalf("between: %d, want 302", r.code)
	}
	if loc, want := r.h.Get("Location"), "/snapshots/"+f.s1+"/file/images/name%20with%20space?x=1"; loc != want {
		t.Errorf("Location = %q, want %q", loc, want)
	}
	if r := f.get(t, "/snapshots/"+snapshot.FormatID(t2.Add(time.Hour))+"/"); r.code != 302 || r.h.Get("Location") != "/snapshots/"+f.s2+"/" {
		t.Errorf("after all: %d %q", r.code, r.h.Get("Location"))
	}
	if r := f.get(t, "/snapshots/"+snapshot.FormatID(t2.Add(time.Hour))); r.code != 302 || r.h.Get("Location") != "/snapshots/"+f.s2 {
		t.Errorf("after all, no slash: %d %q", r.code, r.h.Get("Location"))
	}
	before := f.get(t, "/snapshots/"+snapshot.FormatID(t1.Add(-time.Hour))+"/file/images/small.bin")
	if before.code != 404 {
		t.Errorf("before all: %d, want 404", before.code)
	}
	jsonErr(t, before)
	if r := f.get(t, "/snapshots/2024-01-01/file/images/small.bin"); r.code != 400 {
		t.Errorf("malformed ID: %d, want 400", r.code)
	}
	// Following the redirect gives the file.
	res, err := http.Get(f.ts.URL + "/snapshots/" + between + "/file/images/version.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !bytes.Equal(b, f.v1) {
		t.Errorf("followed redirect: %d %q", res.StatusCode, b)
	}
}

func TestDirectories(t *testing.T) {
	f := newFixture(t, nil)
	base := "/snapshots/" + f.s2
	redirects := map[string]string{
		"/snapshots":                   "/snapshots/",
		base:                           base + "/",
		base + "/file":                 base + "/file/",
		base + "/file/images":          base + "/file/images/",
		base + "/file/images/dir":      base + "/file/images/dir/",
		base + "/file/images/dir/sub":  base + "/file/images/dir/sub/",
		"/channels/production":         "/channels/production/",
		base + "/file/images/my%20dir": base + "/file/images/my%20dir/",
	}
	for p, want := range redirects {
		r := f.get(t, p)
		if r.code != 301 || r.h.Get("Location") != want {
			t.Errorf("%s: %d → %q, want 301 → %q", p, r.code, r.h.Get("Location"), want)
		}
	}
	listings := map[string][]string{
		"/snapshots/":                {f.s1 + "/", f.s2 + "/", "production"},
		base + "/":                   {`href="./file/images/"`, `href="./apt/debian/"`},
		base + "/file/":              {`href="./images/"`},
		base + "/file/images/":       {`href="./dir/"`, `href="./small.bin"`, ">2048<", `href="./name%20with%20space"`, "../"},
		base + "/file/images/dir/":   {`href="./sub/"`, `href="./readme.txt"`},
		base + "/apt/debian/dists/":  {`href="./bookworm/"`},
		"/channels/production/":      {`href="./file/images/"`},
		"/channels/production/file/": {`href="./images/"`},
		"/channels/production/apt/debian/dists/bookworm/": {`href="./InRelease"`},
	}
	for p, wants := range listings {
		r := f.get(t, p)
		if r.code != 200 || !strings.HasPrefix(r.h.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %q", p, r.code, r.h.Get("Content-Type"))
			continue
		}
		for _, w := range wants {
			if !strings.Contains(string(r.body), w) {
				t.Errorf("%s: listing lacks %q", p, w)
			}
		}
	}
	for _, p := range []string{base + "/yum/", base + "/yum", base + "/file/nope/", base + "/file/images/small.bin/", base + "/file/images/nodir/"} {
		if r := f.get(t, p); r.code != 404 {
			t.Errorf("%s: %d, want 404", p, r.code)
		}
	}
	if r := f.do(t, "POST", base+"/file/images/small.bin", nil, "x"); r.code != 405 {
		t.Errorf("POST file: %d, want 405", r.code)
	}
}

func TestPathSafety(t *testing.T) {
	f := newFixture(t, nil)
	// A file outside the tree that a traversal would reach.
	secret := "TOP-SECRET-OUTSIDE-THE-TREE"
	if err := os.WriteFile(filepath.Join(f.dir, "secret.txt"), []byte(secret), 0o644); err != nil {
		t.Fatal(err)
	}
	id := f.s2
	attacks := []string{
		"/snapshots/" + id + "/file/images/x/../../../../etc/passwd",
		"/snapshots/" + id + "/file/images/../../../../secret.txt",
		"/snapshots/" + id + "/file/images/dir/../small.bin",
		"/snapshots/" + id + "/file/images/./small.bin",
		"/snapshots/" + id + "/file/images/..",
		"/snapshots/" + id + "/file/images/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
		"/snapshots/" + id + "/file/images/%2E%2E/%2E%2E/secret.txt",
		"/snapshots/" + id + "/file/images/.%2e/.%2e/etc/passwd",
		"/snapshots/" + id + "/file/images/..%2f..%2f..%2fetc%2fpasswd",
		"/snapshots/" + id + "/file/images/dir%2Freadme.txt",
		"/snapshots/" + id + "/file/images/%2fetc%2fpasswd",
		"/snapshots/" + id + "/file/images/small.bin%00.txt",
		"/snapshots/" + id + "/file/images/%00",
		"/snapshots/" + id + "/file/images//etc/passwd",
		"/snapshots/" + id + "/file//images/small.bin",
		"/snapshots//" + id + "/file/images/small.bin",
		"//snapshots/" + id + "/file/images/small.bin",
		"/snapshots/" + id + "/file/images/..\\..\\..\\etc\\passwd",
		"/snapshots/" + id + "/file/images/%5c..%5c..%5cetc%5cpasswd",
		"/snapshots/" + id + "/file/images/dir\\readme.txt",
		"/snapshots/" + id + "/file/images/%0a",
		"/snapshots/../../etc/passwd",
		"/snapshots/%2e%2e/%2e%2e/etc/passwd",
		"/channels/production/../../../etc/passwd",
		"/channels/production/file/images/%2e%2e/%2e%2e/%2e%2e/%2e%2e/secret.txt",
		"/channels/%2e%2e/etc/passwd",
		"/channels/production/file/images//etc/passwd",
		"/api/v1/snapshots/../../../etc/passwd",
		"/keys/../etc/passwd",
		"//etc/passwd",
		"/etc/passwd",
		"/snapshots/" + id + "/file/images/etc/passwd/../../../../../etc/passwd",
	}
	expect400 := func(p string) bool {
		return !strings.HasSuffix(p, "/etc/passwd") || strings.Contains(p, "..") || strings.Contains(p, "//")
	}
	for _, a := range attacks {
		code, body := f.raw(t, a)
		t.Logf("%-90s %d %.80s", a, code, strings.TrimSpace(body))
		if code != 400 && code != 404 {
			t.Errorf("%s: status %d, want 400 or 404", a, code)
		}
		if expect400(a) && code != 400 && a != "/etc/passwd" {
			t.Errorf("%s: status %d, want 400", a, code)
		}
		if strings.Contains(body, secret) || strings.Contains(body, "root:") || strings.Contains(body, "in-tree passwd") && code != 200 {
			t.Errorf("%s: leaked content: %q", a, body)
		}
	}
	// The Go client does not clean paths either; make sure the same holds.
	if r := f.get(t, "/snapshots/"+id+"/file/images/x/../../../../etc/passwd"); r.code != 400 {
		t.Errorf("client traversal: %d", r.code)
	}
	// An absolute-looking path inside the tree is just a tree path.
	if code, body := f.raw(t, "/snapshots/"+id+"/file/images/etc/passwd"); code != 200 || body != "in-tree passwd\n" {
		t.Errorf("in-tree etc/passwd: %d %q", code, body)
	}
	// Absolute-form request target.
	if code, body := f.raw(t, "http://x/snapshots/"+id+"/file/images/../../../../secret.txt"); code != 400 || strings.Contains(body, secret) {
		t.Errorf("absolute-form traversal: %d", code)
	}
	// Encoded but harmless characters still work.
	if code, body := f.raw(t, "/snapshots/"+id+"/file/images/name%20with%20space"); code != 200 || body != "spaced\n" {
		t.Errorf("encoded space: %d %q", code, body)
	}
	if code, _ := f.raw(t, "/snapshots/"+id+"/file/images/dir/sub/c%2exml"); code != 200 {
		t.Errorf("encoded dot in a name: %d", code)
	}
}

func TestByHash(t *testing.T) {
	f := newFixture(t, nil)
	d := store.DigestOf(f.extra)
	for _, base := range []string{"/snapshots/" + f.s2, "/channels/production"} {
		p := base + "/apt/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/" + string(d)
		r := f.get(t, p)
		if r.code != 200 || !bytes.Equal(r.body, f.extra) || r.h.Get("Etag") != etag(d) {
			t.Errorf("%s: %d %q", p, r.code, r.body)
		}
		rg := f.do(t, "GET", p, map[string]string{"Range": "bytes=0-4"}, "")
		if rg.code != 206 || !bytes.Equal(rg.body, f.extra[:5]) {
			t.Errorf("by-hash range: %d %q", rg.code, rg.body)
		}
	}
	missing := store.DigestOf([]byte("nope"))
	bad := []string{
		"/snapshots/" + f.s2 + "/apt/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/" + string(missing),
		"/snapshots/" + f.s2 + "/apt/debian/dists/bookworm/main/binary-amd64/by-hash/SHA256/" + strings.ToUpper(string(d)),
		"/snapshots/" + f.s2 + "/apt/debian/dists/bookworm/main/binary-amd64/by-hash/MD5Sum/" + string(d),
		"/snapshots/" + f.s2 + "/file/images/by-hash/SHA256/" + string(d), // not apt
		"/snapshots/" + f.s2 + "/apt/debian/dists/xby-hash/SHA256/" + string(d),
	}
	for _, p := range bad {
		if r := f.get(t, p); r.code != 404 {
			t.Errorf("%s: %d, want 404", p, r.code)
		}
	}
}

type fakeSyncs struct {
	mu      sync.Mutex
	running bool
	n       int
	sources [][]string
}

func (s *fakeSyncs) Start(ctx context.Context, sources []string) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return 0, fmt.Errorf("sync %d: %w", s.n, ErrSyncRunning)
	}
	s.running = true
	s.n++
	s.sources = append(s.sources, sources)
	return s.n, nil
}

func (s *fakeSyncs) Status(id int) (any, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id < 1 || id > s.n {
		return nil, false
	}
	return map[string]any{"id": id, "state": "running"}, true
}

func TestAPI(t *testing.T) {
	syncs := &fakeSyncs{}
	f := newFixture(t, func(o *Options) { o.Syncs = syncs })
	auth := map[string]string{"Authorization": "Bearer " + testToken}
	decode := func(r resp, v any) {
		t.Helper()
		if r.h.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", r.h.Get("Content-Type"))
		}
		if err := json.Unmarshal(r.body, v); err != nil {
			t.Fatalf("decoding %s: %v", r.body, err)
		}
	}

	t.Run("list", func(t *testing.T) {
		r := f.get(t, "/api/v1/snapshots")
		if r.code != 200 {
			t.Fatalf("%d %s", r.code, r.body)
		}
		var list []snapshot.Summary
		decode(r, &list)
		if len(list) != 2 || list[0].ID != f.s1 || list[1].ID != f.s2 {
			t.Fatalf("list = %+v", list)
		}
		if len(list[0].Channels) != 1 || list[0].Channels[0] != "production" || len(list[1].Channels) != 0 {
			t.Errorf("channels = %v / %v", list[0].Channels, list[1].Channels)
		}
		if len(list[0].Sources) != 2 || list[0].Sources[0].Kind != "apt" || list[0].Sources[0].Items != 2 || list[0].Size == 0 {
			t.Errorf("sources = %+v", list[0].Sources)
		}
		if !list[0].Created.Equal(t1) {
			t.Errorf("created = %v", list[0].Created)
		}
	})
	t.Run("show", func(t *testing.T) {
		r := f.get(t, "/api/v1/snapshots/"+f.s1)
		var d struct {
			ID       string                  `json:"id"`
			Sources  []snapshot.SourceRecord `json:"sources"`
			Channels []string                `json:"channels"`
			Size     int64                   `json:"size"`
		}
		decode(r, &d)
		if r.code != 200 || d.ID != f.s1 || len(d.Sources) != 2 || d.Sources[1].Tree == "" || len(d.Channels) != 1 || d.Size == 0 {
			t.Errorf("%d %+v", r.code, d)
		}
		for p, code := range map[string]int{
			"/api/v1/snapshots/20200101T000000Z":                        404,
			"/api/v1/snapshots/" + snapshot.FormatID(t1.Add(time.Hour)): 404, // no at-or-before in the API
			"/api/v1/snapshots/latest-ish":                              400,
			"/api/v1/nope":                                              404,
			"/api/v1/":                                                  404,
			"/api/v1/snapshots/" + f.s1 + "/extra":                      404,
		} {
			r := f.get(t, p)
			if r.code != code {
				t.Errorf("%s: %d, want %d", p, r.code, code)
			}
			jsonErr(t, r)
		}
	})
	t.Run("diff", func(t *testing.T) {
		r := f.get(t, "/api/v1/snapshots/"+f.s1+"/diff/"+f.s2)
		var d []snapshot.SourceDiff
		decode(r, &d)
		if r.code != 200 || len(d) != 2 {
			t.Fatalf("%d %s", r.code, r.body)
		}
		apt := d[0]
		if apt.Source != "apt/debian" || apt.Status != "changed" || len(apt.Changed) != 1 || apt.Changed[0].To != "2.0" || len(apt.Added) != 1 || len(apt.Removed) != 1 {
			t.Errorf("apt diff = %+v", apt)
		}
		if d[1].Source != "file/images" || d[1].Status != "changed" {
			t.Errorf("file diff = %+v", d[1])
		}
		if r := f.get(t, "/api/v1/snapshots/"+f.s1+"/diff/20200101T000000Z"); r.code != 404 {
			t.Errorf("diff with unknown: %d", r.code)
		}
	})
	t.Run("methods", func(t *testing.T) {
		r := f.do(t, "PUT", "/api/v1/snapshots", nil, "")
		if r.code != 405 || !strings.Contains(r.h.Get("Allow"), "GET") {
			t.Errorf("PUT: %d Allow %q", r.code, r.h.Get("Allow"))
		}
		jsonErr(t, r)
		if r := f.do(t, "GET", "/api/v1/channels/production/promote", nil, ""); r.code != 405 || r.h.Get("Allow") != "POST" {
			t.Errorf("GET promote: %d Allow %q", r.code, r.h.Get("Allow"))
		}
		if r := f.do(t, "HEAD", "/api/v1/snapshots", nil, ""); r.code != 200 || len(r.body) != 0 {
			t.Errorf("HEAD: %d", r.code)
		}
		if r := f.do(t, "POST", "/", nil, ""); r.code != 405 {
			t.Errorf("POST /: %d", r.code)
		}
	})
	t.Run("promote auth", func(t *testing.T) {
		body := `{"snapshot":"` + f.s2 + `"}`
		for name, c := range map[string]struct {
			hdr  map[string]string
			code int
		}{
			"no token":     {nil, 401},
			"wrong token":  {map[string]string{"Authorization": "Bearer nope"}, 401},
			"basic auth":   {map[string]string{"Authorization": "Basic " + testToken}, 401},
			"longer token": {map[string]string{"Authorization": "Bearer " + testToken + "x"}, 401},
		} {
			r := f.do(t, "POST", "/api/v1/channels/production/promote", c.hdr, body)
			if r.code != c.code {
				t.Errorf("%s: %d, want %d", name, r.code, c.code)
			}
			if r.code == 401 && r.h.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: no WWW-Authenticate", name)
			}
			jsonErr(t, r)
		}
		// A server without a token refuses writes with 403.
		ro, err := New(Options{Catalog: f.cat})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/v1/channels/production/promote", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testToken)
		ro.ServeHTTP(rec, req)
		if rec.Code != 403 || !strings.Contains(rec.Body.String(), "auth.token_file") {
			t.Errorf("tokenless server: %d %s", rec.Code, rec.Body)
		}
	})
	t.Run("promote", func(t *testing.T) {
		for name, c := range map[string]struct {
			path, body string
			code       int
		}{
			"bad json":         {"/api/v1/channels/production/promote", `{"snapshot":`, 400},
			"unknown field":    {"/api/v1/channels/production/promote", `{"snap":"` + f.s2 + `"}`, 400},
			"empty body":       {"/api/v1/channels/production/promote", ``, 400},
			"bad id":           {"/api/v1/channels/production/promote", `{"snapshot":"yesterday"}`, 400},
			"unknown snapshot": {"/api/v1/channels/production/promote", `{"snapshot":"20200101T000000Z"}`, 404},
			"bad channel":      {"/api/v1/channels/Prod!/promote", `{"snapshot":"` + f.s2 + `"}`, 400},
		} {
			r := f.do(t, "POST", c.path, auth, c.body)
			if r.code != c.code {
				t.Errorf("%s: %d, want %d (%s)", name, r.code, c.code, r.body)
			}
			jsonErr(t, r)
		}
		before := f.changes.Load()
		r := f.do(t, "POST", "/api/v1/channels/production/promote", auth, `{"snapshot":"`+f.s2+`"}`)
		if r.code != 200 {
			t.Fatalf("promote: %d %s", r.code, r.body)
		}
		var ch snapshot.ChannelDetail
		decode(r, &ch)
		if ch.Snapshot != f.s2 || ch.Previous != f.s1 || len(ch.History) != 2 {
			t.Errorf("promote answer: %+v", ch)
		}
		if f.changes.Load() != before+1 {
			t.Errorf("OnChange not called")
		}
		// Served at once (own change: no refresh delay).
		if r := f.get(t, "/channels/production/file/images/version.txt"); !bytes.Equal(r.body, f.v2) {
			t.Errorf("after promote: %q", r.body)
		}
	})
	t.Run("channels", func(t *testing.T) {
		var list []snapshot.ChannelSummary
		decode(f.get(t, "/api/v1/channels"), &list)
		if len(list) != 1 || list[0].Name != "production" || list[0].Snapshot != f.s2 || list[0].Previous != f.s1 {
			t.Errorf("channels = %+v", list)
		}
		var ch snapshot.ChannelDetail
		r := f.get(t, "/api/v1/channels/production")
		decode(r, &ch)
		if len(ch.History) != 2 || ch.History[0].Action != "promote" || ch.History[0].Snapshot != f.s1 || ch.History[1].From != f.s1 {
			t.Errorf("history = %+v", ch.History)
		}
		if r := f.get(t, "/api/v1/channels/nope"); r.code != 404 {
			t.Errorf("unknown channel: %d", r.code)
		}
	})
	t.Run("rollback", func(t *testing.T) {
		if r := f.do(t, "POST", "/api/v1/channels/production/rollback", nil, ""); r.code != 401 {
			t.Errorf("rollback without token: %d", r.code)
		}
		r := f.do(t, "POST", "/api/v1/channels/production/rollback", auth, "")
		var ch snapshot.ChannelDetail
		decode(r, &ch)
		if r.code != 200 || ch.Snapshot != f.s1 {
			t.Fatalf("rollback: %d %s", r.code, r.body)
		}
		if r := f.get(t, "/channels/production/file/images/version.txt"); !bytes.Equal(r.body, f.v1) {
			t.Errorf("after rollback: %q", r.body)
		}
		r = f.do(t, "POST", "/api/v1/channels/production/rollback", auth, "")
		if r.code != 409 {
			t.Errorf("second rollback: %d, want 409", r.code)
		}
		jsonErr(t, r)
		if r := f.do(t, "POST", "/api/v1/channels/nope/rollback", auth, ""); r.code != 404 {
			t.Errorf("rollback unknown channel: %d", r.code)
		}
		// A fresh channel has no history either.
		f.do(t, "POST", "/api/v1/channels/fresh/promote", auth, `{"snapshot":"`+f.s2+`"}`)
		if r := f.do(t, "POST", "/api/v1/channels/fresh/rollback", auth, ""); r.code != 409 {
			t.Errorf("fresh rollback: %d, want 409", r.code)
		}
	})
	t.Run("delete", func(t *testing.T) {
		if r := f.do(t, "DELETE", "/api/v1/snapshots/"+f.s1, nil, ""); r.code != 401 {
			t.Errorf("delete without token: %d", r.code)
		}
		r := f.do(t, "DELETE", "/api/v1/snapshots/"+f.s1, auth, "")
		if r.code != 409 || !strings.Contains(jsonErr(t, r), "production") {
			t.Errorf("delete in use: %d %s", r.code, r.body)
		}
		if r := f.do(t, "DELETE", "/api/v1/snapshots/20200101T000000Z", auth, ""); r.code != 404 {
			t.Errorf("delete unknown: %d", r.code)
		}
		f.do(t, "POST", "/api/v1/channels/production/promote", auth, `{"snapshot":"`+f.s2+`"}`)
		before := f.changes.Load()
		if r := f.do(t, "DELETE", "/api/v1/snapshots/"+f.s1, auth, ""); r.code != 200 {
			t.Fatalf("delete: %d %s", r.code, r.body)
		}
		if f.changes.Load() != before+1 {
			t.Errorf("OnChange not called on delete")
		}
		if r := f.get(t, "/api/v1/snapshots/"+f.s1); r.code != 404 {
			t.Errorf("deleted snapshot: %d", r.code)
		}
		// Its URL now resolves at-or-before: nothing before s2.
		if r := f.get(t, "/snapshots/"+f.s1+"/file/images/version.txt"); r.code != 404 {
			t.Errorf("deleted snapshot URL: %d", r.code)
		}
		var list []snapshot.Summary
		decode(f.get(t, "/api/v1/snapshots"), &list)
		if len(list) != 1 || list[0].ID != f.s2 {
			t.Errorf("after delete: %+v", list)
		}
	})
	t.Run("syncs", func(t *testing.T) {
		if r := f.do(t, "POST", "/api/v1/syncs", nil, ""); r.code != 401 {
			t.Errorf("sync without token: %d", r.code)
		}
		r := f.do(t, "POST", "/api/v1/syncs", auth, `{"sources":["apt/debian"]}`)
		var started struct {
			ID int `json:"id"`
		}
		decode(r, &started)
		if r.code != 202 || started.ID != 1 || len(syncs.sources) != 1 || syncs.sources[0][0] != "apt/debian" {
			t.Errorf("start: %d %s", r.code, r.body)
		}
		if r := f.do(t, "POST", "/api/v1/syncs", auth, ""); r.code != 409 {
			t.Errorf("second start: %d, want 409", r.code)
		}
		if r := f.do(t, "POST", "/api/v1/syncs", auth, "{bad"); r.code != 400 {
			t.Errorf("bad body: %d", r.code)
		}
		if r := f.get(t, "/api/v1/syncs/1"); r.code != 200 || !strings.Contains(string(r.body), "running") {
			t.Errorf("status: %d %s", r.code, r.body)
		}
		if r := f.get(t, "/api/v1/syncs/99"); r.code != 404 {
			t.Errorf("unknown sync: %d", r.code)
		}
		if r := f.get(t, "/api/v1/syncs/x"); r.code != 400 {
			t.Errorf("bad sync id: %d", r.code)
		}
		// Without Syncs: 501.
		ro, err := New(Options{Catalog: f.cat, Token: testToken})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/api/v1/syncs", nil)
		req.Header.Set("Authorization", "Bearer "+testToken)
		ro.ServeHTTP(rec, req)
		if rec.Code != 501 {
			t.Errorf("no Syncs: %d", rec.Code)
		}
	})
}

func TestMisc(t *testing.T) {
	reg := prometheus.NewRegistry()
	f := newFixture(t, func(o *Options) { o.Registry = reg })

	r := f.get(t, "/healthz")
	var h health
	if err := json.Unmarshal(r.body, &h); err != nil || r.code != 200 || h.Status != "ok" || h.LatestSnapshot != f.s2 || h.Snapshots != 2 {
		t.Errorf("healthz: %d %s", r.code, r.body)
	}

	k := f.get(t, "/keys/mirrord.asc")
	if k.code != 200 || k.h.Get("Content-Type") != "application/pgp-keys" || !strings.Contains(string(k.body), "BEGIN PGP PUBLIC KEY") {
		t.Errorf("key: %d %q", k.code, k.h.Get("Content-Type"))
	}
	nokey, _ := New(Options{Catalog: f.cat, Registry: prometheus.NewRegistry()})
	rec := httptest.NewRecorder()
	nokey.ServeHTTP(rec, httptest.NewRequest("GET", "/keys/mirrord.asc", nil))
	if rec.Code != 404 {
		t.Errorf("no key: %d", rec.Code)
	}

	idx := f.get(t, "/")
	if idx.code != 200 || !strings.HasPrefix(idx.h.Get("Content-Type"), "text/html") {
		t.Fatalf("index: %d", idx.code)
	}
	for _, w := range []string{f.s1, f.s2, "production", "/ui/snapshots/" + f.s1 + "?source=apt%2Fdebian", "file/images"} {
		if !strings.Contains(string(idx.body), w) {
			t.Errorf("index lacks %q", w)
		}
	}

	f.get(t, "/snapshots/"+f.s2+"/file/images/small.bin")
	f.get(t, "/snapshots/"+f.s2+"/file/images/missing")
	f.get(t, "/nothing-here")
	m := f.get(t, "/metrics")
	body := string(m.body)
	for _, w := range []string{
		`mirrord_http_requests_total{code="200",route="snapshot"}`,
		`mirrord_http_requests_total{code="404",route="snapshot"}`,
		`mirrord_http_requests_total{code="404",route="other"}`,
		`mirrord_http_response_bytes_total{route="snapshot"}`,
		`mirrord_http_request_duration_seconds_bucket{route="snapshot"`,
		"mirrord_snapshots 2",
	} {
		if !strings.Contains(body, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
	if strings.Contains(body, "small.bin") {
		t.Errorf("metrics contain a raw path")
	}
	// The registry passed in holds the metrics too.
	mfs, err := reg.Gather()
	if err != nil || len(mfs) == 0 {
		t.Errorf("registry: %v %d", err, len(mfs))
	}
	// A second server on the same registry works.
	if _, err := New(Options{Catalog: f.cat, Registry: reg}); err != nil {
		t.Errorf("second server on one registry: %v", err)
	}
}

type fakeGit struct{ calls []string }

func (g *fakeGit) ServeSource(w http.ResponseWriter, r *http.Request, rec *snapshot.Record, name, rest string, immutable bool) bool {
	if !strings.HasSuffix(name, ".git") {
		return false
	}
	g.calls = append(g.calls, fmt.Sprintf("%s %s %s %q %v", r.Method, rec.ID, name, rest, immutable))
	io.WriteString(w, "git!")
	return true
}

func TestKindServer(t *testing.T) {
	g := &fakeGit{}
	f := newFixture(t, func(o *Options) { o.Kinds = map[string]KindServer{"git": g, "file": g} })
	r := f.get(t, "/snapshots/"+f.s2+"/git/stdlib.git/info/refs?service=git-upload-pack")
	if r.code != 200 || string(r.body) != "git!" {
		t.Errorf("git: %d %q", r.code, r.body)
	}
	r = f.do(t, "POST", "/channels/production/git/stdlib.git/git-upload-pack", nil, "0000")
	if r.code != 200 || string(r.body) != "git!" {
		t.Errorf("git POST: %d %q", r.code, r.body)
	}
	f.get(t, "/snapshots/"+f.s2+"/git/stdlib.git")
	want := []string{
		fmt.Sprintf("GET %s stdlib.git %q true", f.s2, "info/refs"),
		fmt.Sprintf("POST %s stdlib.git %q false", f.s1, "git-upload-pack"),
		fmt.Sprintf("GET %s stdlib.git %q true", f.s2, ""),
	}
	if fmt.Sprint(g.calls) != fmt.Sprint(want) {
		t.Errorf("calls = %q, want %q", g.calls, want)
	}
	// Declined: falls back to the tree.
	if r := f.get(t, "/snapshots/"+f.s2+"/file/images/version.txt"); r.code != 200 || !bytes.Equal(r.body, f.v2) {
		t.Errorf("fallback: %d", r.code)
	}
}

func TestBadPath(t *testing.T) {
	for p, bad := range map[string]bool{
		"/":                 false,
		"/snapshots/":       false,
		"/a/b.c/d..e/.f/":   false,
		"/a//b":             true,
		"//":                true,
		"/a/./b":            true,
		"/a/..":             true,
		"/a/.":              true,
		"/a\\b":             true,
		"/a\x00b":           true,
		"":                  true,
		"/snapshots/x/y/..": true,
	} {
		r := &http.Request{URL: &url.URL{Path: p}}
		if got := badPath(r) != ""; got != bad {
			t.Errorf("badPath(%q) = %v, want %v", p, got, bad)
		}
	}
}

func TestBlobCache(t *testing.T) {
	c := newBlobCache(10, 25)
	for i := 0; i < 5; i++ {
		c.put(store.Digest(fmt.Sprint(i)), &cachedBlob{data: make([]byte, 10)})
	}
	n, total := c.stats()
	if n != 2 || total != 20 {
		t.Errorf("stats = %d, %d", n, total)
	}
	if c.get("4") == nil || c.get("0") != nil {
		t.Errorf("eviction order wrong")
	}
	c.put("big", &cachedBlob{data: make([]byte, 11)})
	if c.get("big") != nil {
		t.Errorf("oversized blob cached")
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestMissingBlob(t *testing.T) {
	var logs syncBuffer
	f := newFixture(t, func(o *Options) {
		o.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	d := store.DigestOf(f.files["file/images/big.bin"])
	if err := f.st.Blobs().Delete(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	r := f.get(t, "/snapshots/"+f.s2+"/file/images/big.bin")
	if r.code != 500 || r.h.Get("Etag") != "" || r.h.Get("Cache-Control") == "public, max-age=31536000, immutable" {
		t.Errorf("missing blob: %d %v", r.code, r.h)
	}
	if !strings.Contains(jsonErr(t, r), "verify") {
		t.Errorf("missing blob message: %s", r.body)
	}
	f.get(t, "/snapshots/"+f.s2+"/file/images/small.bin")
	out := logs.String()
	if !strings.Contains(out, "level=ERROR") || !strings.Contains(out, "status=500") || !strings.Contains(out, "big.bin") {
		t.Errorf("no error log for the 500:\n%s", out)
	}
	if !strings.Contains(out, "level=DEBUG") || !strings.Contains(out, "small.bin status=200 bytes=2048") {
		t.Errorf("no debug log for the 200:\n%s", out)
	}
}

func benchServe(b *testing.B, name string) {
	f := newFixture(b, nil)
	want := f.files["file/images/"+name]
	u := f.ts.URL + "/snapshots/" + f.s2 + "/file/images/" + name
	tr := &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.SetBytes(int64(len(want)))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 64<<10)
		for pb.Next() {
			res, err := client.Get(u)
			if err != nil {
				b.Error(err)
				return
			}
			var n int64
			for {
				m, err := res.Body.Read(buf)
				n += int64(m)
				if err != nil {
					break
				}
			}
			res.Body.Close()
			if res.StatusCode != 200 || n != int64(len(want)) {
				b.Errorf("%d, %d bytes", res.StatusCode, n)
				return
			}
		}
	})
}

// BenchmarkServeSmall serves a 2 KiB file (in-memory cache path).
func BenchmarkServeSmall(b *testing.B) { benchServe(b, "small.bin") }

// BenchmarkServeLarge serves a 1 MiB file (sendfile path).
func BenchmarkServeLarge(b *testing.B) { benchServe(b, "large.bin") }
