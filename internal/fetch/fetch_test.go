package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mirrord/mirrord/internal/store"
)

// memBlobs is an in-memory store.Blobs for these tests.
type memBlobs struct {
	mu    sync.Mutex
	blobs map[store.Digest][]byte
}

func newMemBlobs() *memBlobs { return &memBlobs{blobs: make(map[store.Digest][]byte)} }

func (m *memBlobs) Put(ctx context.Context, r io.Reader, exp store.Expect) (store.Info, error) {
	limit := exp.MaxSize
	if limit <= 0 {
		limit = store.DefaultMaxSize
	}
	h := sha256.New()
	var buf bytes.Buffer
	n, err := io.Copy(io.MultiWriter(h, &buf), io.LimitReader(r, limit+1))
	switch {
	case err != nil:
		return store.Info{}, fmt.Errorf("mem put: %w", err)
	case n > limit:
		return store.Info{}, fmt.Errorf("mem put: over %d bytes: %w", limit, store.ErrTooLarge)
	case exp.Size > 0 && n != exp.Size:
		return store.Info{}, fmt.Errorf("mem put: %d bytes, want %d: %w", n, exp.Size, store.ErrSizeMismatch)
	}
	d := store.Digest(hex.EncodeToString(h.Sum(nil)))
	if exp.Digest != "" && d != exp.Digest {
		return store.Info{}, fmt.Errorf("mem put: got %s, want %s: %w", d, exp.Digest, store.ErrDigestMismatch)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[d] = buf.Bytes()
	return store.Info{Digest: d, Size: n, ModTime: time.Now()}, nil
}

func (m *memBlobs) Open(ctx context.Context, d store.Digest) (store.Blob, error) {
	return nil, errors.New("mem: Open not implemented")
}

func (m *memBlobs) Stat(ctx context.Context, d store.Digest) (store.Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[d]
	if !ok {
		return store.Info{}, fmt.Errorf("mem stat %s: %w", d, store.ErrNotFound)
	}
	return store.Info{Digest: d, Size: int64(len(b))}, nil
}

func (m *memBlobs) List(ctx context.Context, fn func(store.Info) error) error {
	m.mu.Lock()
	infos := make([]store.Info, 0, len(m.blobs))
	for d, b := range m.blobs {
		infos = append(infos, store.Info{Digest: d, Size: int64(len(b))})
	}
	m.mu.Unlock()
	for _, i := range infos {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

func (m *memBlobs) Delete(ctx context.Context, d store.Digest) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blobs, d)
	return nil
}

func (m *memBlobs) CleanTemp(ctx context.Context, age time.Duration) (int, error) { return 0, nil }

func (m *memBlobs) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.blobs)
}

// server is an httptest server on 127.0.0.1 counting requests.
type server struct {
	*httptest.Server
	requests atomic.Int64
}

func newServer(t *testing.T, h func(w http.ResponseWriter, r *http.Request, n int64)) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h(w, r, s.requests.Add(1))
	}))
	t.Cleanup(s.Close)
	return s
}

func serve(body []byte) func(http.ResponseWriter, *http.Request, int64) {
	return func(w http.ResponseWriter, r *http.Request, _ int64) {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
}

// truncate declares the full Content-Length, sends half and hangs up.
func truncate(w http.ResponseWriter, body []byte) {
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write(body[:len(body)/2])
	w.(http.Flusher).Flush()
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		panic(err)
	}
	conn.Close()
}

func testOptions() Options {
	return Options{Backoff: time.Millisecond, Logger: nil}
}

func content(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func expect(b []byte) store.Expect {
	return store.Expect{Digest: store.DigestOf(b), Size: int64(len(b))}
}

func TestBlobStoresVerified(t *testing.T) {
	body := content(100_000)
	var ua, ae atomic.Value
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		ua.Store(r.Header.Get("User-Agent"))
		ae.Store(r.Header.Get("Accept-Encoding"))
		serve(body)(w, r, n)
	})
	reg := prometheus.NewRegistry()
	var progressed atomic.Int64
	opt := testOptions()
	opt.Metrics = NewMetrics(reg)
	opt.OnBytes = func(n int64) { progressed.Add(n) }
	opt.UserAgent = "mirrord-test/1"
	mem := newMemBlobs()
	info, err := New(mem, opt).Blob(context.Background(), srv.URL+"/pool/a.deb", expect(body))
	if err != nil {
		t.Fatal(err)
	}
	if info.Digest != store.DigestOf(body) || info.Size != int64(len(body)) {
		t.Errorf("info = %+v", info)
	}
	if !bytes.Equal(mem.blobs[info.Digest], body) {
		t.Error("stored content differs")
	}
	if got := progressed.Load(); got != int64(len(body)) {
		t.Errorf("OnBytes total %d, want %d", got, len(body))
	}
	if ua.Load() != "mirrord-test/1" || ae.Load() != "identity" {
		t.Errorf("User-Agent %q, Accept-Encoding %q", ua.Load(), ae.Load())
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if v := counter(t, reg, "mirrord_fetch_requests_total", "host", host, "code", "200"); v != 1 {
		t.Errorf("requests{code=200} = %v, want 1", v)
	}
	if v := counter(t, reg, "mirrord_fetch_bytes_total", "host", host); v != float64(len(body)) {
		t.Errorf("bytes = %v, want %d", v, len(body))
	}
}

func TestBlobWithoutDigest(t *testing.T) {
	body := content(1000)
	srv := newServer(t, serve(body))
	info, err := New(newMemBlobs(), testOptions()).Blob(context.Background(), srv.URL+"/x", store.Expect{})
	if err != nil || info.Digest != store.DigestOf(body) {
		t.Fatalf("info %+v, err %v", info, err)
	}
}

func TestBlobDigestMismatchNotRetried(t *testing.T) {
	srv := newServer(t, serve([]byte("evil content")))
	mem := newMemBlobs()
	url := srv.URL + "/pool/a.deb"
	_, err := New(mem, testOptions()).Blob(context.Background(), url, store.Expect{Digest: store.DigestOf([]byte("good content"))})
	if !errors.Is(err, store.ErrDigestMismatch) {
		t.Fatalf("err = %v, want ErrDigestMismatch", err)
	}
	if !strings.Contains(err.Error(), url) {
		t.Errorf("error does not name the URL: %v", err)
	}
	if mem.count() != 0 {
		t.Error("a mismatching blob was stored")
	}
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1 (bad data is not retried)", n)
	}
}

func TestBlobSizeMismatchByContentLength(t *testing.T) {
	body := content(100)
	srv := newServer(t, serve(body))
	exp := expect(body)
	exp.Size = 99
	_, err := New(newMemBlobs(), testOptions()).Blob(context.Background(), srv.URL+"/a", exp)
	if !errors.Is(err, store.ErrSizeMismatch) || srv.requests.Load() != 1 {
		t.Fatalf("err = %v after %d requests, want ErrSizeMismatch after 1", err, srv.requests.Load())
	}
}

func TestBlobRetriesServerErrors(t *testing.T) {
	body := content(5000)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n <= 2 {
			http.Error(w, "overloaded", http.StatusInternalServerError)
			return
		}
		serve(body)(w, r, n)
	})
	reg := prometheus.NewRegistry()
	opt := testOptions()
	opt.Metrics = NewMetrics(reg)
	if _, err := New(newMemBlobs(), opt).Blob(context.Background(), srv.URL+"/a", expect(body)); err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load(); n != 3 {
		t.Errorf("%d requests, want 3", n)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	if v := counter(t, reg, "mirrord_fetch_retries_total", "host", host); v != 2 {
		t.Errorf("retries = %v, want 2", v)
	}
	if v := counter(t, reg, "mirrord_fetch_requests_total", "host", host, "code", "500"); v != 2 {
		t.Errorf("requests{code=500} = %v, want 2", v)
	}
}

func TestBlobClientErrorsNotRetried(t *testing.T) {
	for _, code := range []int{404, 410, 403, 400} {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
			http.Error(w, "no", code)
		})
		url := srv.URL + "/dists/bookwrom/InRelease"
		_, err := New(newMemBlobs(), testOptions()).Blob(context.Background(), url, store.Expect{})
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != code || he.URL != url {
			t.Fatalf("%d: err = %#v, want *HTTPError{%s, %d}", code, err, url, code)
		}
		if got, want := errors.Is(err, ErrNotFound), code == 404 || code == 410; got != want {
			t.Errorf("%d: errors.Is(err, ErrNotFound) = %v", code, got)
		}
		if n := srv.requests.Load(); n != 1 {
			t.Errorf("%d: %d requests, want 1", code, n)
		}
		if !strings.Contains(err.Error(), url) {
			t.Errorf("%d: error does not name the URL: %v", code, err)
		}
		if code == 404 && !strings.Contains(err.Error(), "check the url/suite in your config") {
			t.Errorf("404 error gives no hint: %v", err)
		}
	}
}

func TestBlobTruncatedBodyRetried(t *testing.T) {
	body := content(200_000)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			truncate(w, body)
			return
		}
		serve(body)(w, r, n)
	})
	mem := newMemBlobs()
	if _, err := New(mem, testOptions()).Blob(context.Background(), srv.URL+"/a", expect(body)); err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestBlobAlwaysTruncated(t *testing.T) {
	body := content(200_000)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { truncate(w, body) })
	mem := newMemBlobs()
	url := srv.URL + "/pool/big.deb"
	_, err := New(mem, testOptions()).Blob(context.Background(), url, expect(body))
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v, want ErrTruncated", err)
	}
	for _, want := range []string{url, "connection closed", "of 200000 bytes", "gave up after 4 attempts"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	if n := srv.requests.Load(); n != 4 {
		t.Errorf("%d requests, want 4 (1 + 3 retries)", n)
	}
	if mem.count() != 0 {
		t.Error("partial blob stored")
	}
}

// A body that ends cleanly but short (no Content-Length to catch it) shows
// up as a size mismatch: that is retried exactly once.
func TestBlobShortBodyMismatchRetriedOnce(t *testing.T) {
	body := content(10_000)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Write(body[:5000]) // chunked, cleanly terminated
		w.(http.Flusher).Flush()
	})
	_, err := New(newMemBlobs(), testOptions()).Blob(context.Background(), srv.URL+"/a", expect(body))
	if !errors.Is(err, store.ErrSizeMismatch) || !errors.Is(err, ErrTruncated) {
		t.Fatalf("err = %v, want size mismatch + truncated", err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestBlobTooLarge(t *testing.T) {
	body := content(10_000)
	for _, chunked := range []bool{false, true} {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
			if !chunked {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			}
			w.Write(body)
		})
		mem := newMemBlobs()
		_, err := New(mem, testOptions()).Blob(context.Background(), srv.URL+"/a", store.Expect{MaxSize: 1000})
		if !errors.Is(err, ErrTooLarge) || !errors.Is(err, store.ErrTooLarge) {
			t.Errorf("chunked=%v: err = %v, want ErrTooLarge", chunked, err)
		}
		if n := srv.requests.Load(); n != 1 || mem.count() != 0 {
			t.Errorf("chunked=%v: %d requests, %d blobs; want 1, 0", chunked, n, mem.count())
		}
	}
}

func TestBlobAlreadyStored(t *testing.T) {
	body := content(100)
	srv := newServer(t, serve(body))
	mem := newMemBlobs()
	if _, err := mem.Put(context.Background(), bytes.NewReader(body), store.Expect{}); err != nil {
		t.Fatal(err)
	}
	info, err := New(mem, testOptions()).Blob(context.Background(), srv.URL+"/a", expect(body))
	if err != nil || info.Digest != store.DigestOf(body) {
		t.Fatalf("info %+v, err %v", info, err)
	}
	if n := srv.requests.Load(); n != 0 {
		t.Errorf("%d requests, want 0", n)
	}
}

func TestBlobDeduplicated(t *testing.T) {
	body := content(50_000)
	started := make(chan struct{}, 100)
	release := make(chan struct{})
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		started <- struct{}{}
		<-release
		serve(body)(w, r, n)
	})
	f := New(newMemBlobs(), testOptions())
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() {
			_, err := f.Blob(context.Background(), srv.URL+"/a", expect(body))
			errs <- err
		})
	}
	<-started
	time.Sleep(50 * time.Millisecond) // let the other callers pile up
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d requests, want 1", n)
	}
}

func TestBlobDedupSurvivesLeaderCancel(t *testing.T) {
	body := content(1000)
	started := make(chan struct{}, 10)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			started <- struct{}{}
			<-r.Context().Done() // the leader's request hangs until cancelled
			return
		}
		serve(body)(w, r, n)
	})
	f := New(newMemBlobs(), testOptions())
	leaderCtx, cancel := context.WithCancel(context.Background())
	leaderErr := make(chan error, 1)
	go func() {
		_, err := f.Blob(leaderCtx, srv.URL+"/a", expect(body))
		leaderErr <- err
	}()
	<-started
	waiterErr := make(chan error, 1)
	go func() {
		_, err := f.Blob(context.Background(), srv.URL+"/a", expect(body))
		waiterErr <- err
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Errorf("leader: err = %v, want context.Canceled", err)
	}
	if err := <-waiterErr; err != nil {
		t.Errorf("waiter: %v (should take over the download)", err)
	}
}

func TestPerHostLimit(t *testing.T) {
	var inflight, peak atomic.Int64
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		cur := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if cur <= p || peak.CompareAndSwap(p, cur) {
				break
			}
		}
		time.Sleep(30 * time.Millisecond)
		w.Write([]byte(r.URL.Path))
	})
	opt := testOptions()
	opt.PerHost = 2
	f := New(newMemBlobs(), opt)
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if _, err := f.Blob(context.Background(), fmt.Sprintf("%s/f%d", srv.URL, i), store.Expect{}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p != 2 {
		t.Errorf("peak concurrent requests %d, want 2", p)
	}
	if n := srv.requests.Load(); n != 10 {
		t.Errorf("%d requests, want 10", n)
	}
}

func TestCancelStopsRetryLoop(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	})
	opt := testOptions()
	opt.Backoff = 10 * time.Second
	opt.Retries = 10
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := New(newMemBlobs(), opt).Blob(ctx, srv.URL+"/a", store.Expect{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v to notice cancellation", d)
	}
	if !strings.Contains(err.Error(), "503") {
		t.Errorf("error should mention the last failure: %v", err)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		w.Write([]byte("ok"))
	})
	start := time.Now()
	if _, err := New(newMemBlobs(), testOptions()).Get(context.Background(), Request{URL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Errorf("retried after %v, want ≥ 1s (Retry-After)", d)
	}
}

func TestStalledBodyRetried(t *testing.T) {
	body := content(10_000)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			w.Write(body[:100])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
			return
		}
		serve(body)(w, r, n)
	})
	opt := testOptions()
	opt.StallTimeout = 100 * time.Millisecond
	if _, err := New(newMemBlobs(), opt).Blob(context.Background(), srv.URL+"/a", expect(body)); err != nil {
		t.Fatal(err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2", n)
	}
}

func TestGetConditional(t *testing.T) {
	const etag, lastMod = `"v1"`, "Sat, 01 Jun 2024 10:00:00 GMT"
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		w.Header().Set("ETag", etag)
		w.Header().Set("Last-Modified", lastMod)
		if r.Header.Get("If-None-Match") == etag || r.Header.Get("If-Modified-Since") == lastMod {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		w.Write([]byte("Origin: Debian\n"))
	})
	f := New(newMemBlobs(), testOptions())
	first, err := f.Get(context.Background(), Request{URL: srv.URL + "/InRelease"})
	if err != nil {
		t.Fatal(err)
	}
	if string(first.Body) != "Origin: Debian\n" || first.ETag != etag || first.LastModified != lastMod || first.Status != 200 || first.NotModified {
		t.Fatalf("first = %+v", first)
	}
	for _, req := range []Request{
		{URL: srv.URL + "/InRelease", ETag: first.ETag},
		{URL: srv.URL + "/InRelease", LastModified: first.LastModified},
	} {
		again, err := f.Get(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		if !again.NotModified || again.Status != http.StatusNotModified || again.Body != nil || again.ETag != etag {
			t.Errorf("conditional %+v: got %+v", req, again)
		}
	}
}

func TestGetTooLarge(t *testing.T) {
	body := content(5000)
	for _, chunked := range []bool{false, true} {
		srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
			if !chunked {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
			}
			w.Write(body)
		})
		_, err := New(newMemBlobs(), testOptions()).Get(context.Background(), Request{URL: srv.URL + "/Packages", MaxSize: 4999})
		if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), srv.URL+"/Packages") {
			t.Errorf("chunked=%v: err = %v, want ErrTooLarge naming the URL", chunked, err)
		}
		if n := srv.requests.Load(); n != 1 {
			t.Errorf("chunked=%v: %d requests, want 1", chunked, n)
		}
	}
	srv := newServer(t, serve(body))
	resp, err := New(newMemBlobs(), testOptions()).Get(context.Background(), Request{URL: srv.URL, MaxSize: 5000})
	if err != nil || len(resp.Body) != 5000 {
		t.Errorf("exactly MaxSize: err %v", err)
	}
}

func TestOpenHoldsHostSlot(t *testing.T) {
	body := content(70_000)
	srv := newServer(t, serve(body))
	opt := testOptions()
	opt.PerHost = 1
	f := New(newMemBlobs(), opt)
	rc, err := f.Open(context.Background(), srv.URL+"/Contents", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if _, err := f.Get(ctx, Request{URL: srv.URL + "/other"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get while stream open: err = %v, want to wait for the slot", err)
	}
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read %d bytes, err %v", len(got), err)
	}
	rc.Close()
	rc.Close()
	if _, err := f.Get(context.Background(), Request{URL: srv.URL + "/other"}); err != nil {
		t.Errorf("Get after Close: %v", err)
	}
}

func TestOpenMaxSize(t *testing.T) {
	body := content(70_000)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) { w.Write(body) }) // chunked
	rc, err := New(newMemBlobs(), testOptions()).Open(context.Background(), srv.URL+"/Contents", 50_000)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if !errors.Is(err, ErrTooLarge) || len(got) != 50_000 {
		t.Errorf("read %d bytes, err %v; want 50000 and ErrTooLarge", len(got), err)
	}
}

func TestOpenRetriesConnectNotBody(t *testing.T) {
	body := content(100_000)
	srv := newServer(t, func(w http.ResponseWriter, r *http.Request, n int64) {
		if n == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		truncate(w, body)
	})
	rc, err := New(newMemBlobs(), testOptions()).Open(context.Background(), srv.URL+"/Contents", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	_, err = io.ReadAll(rc)
	if !errors.Is(err, ErrTruncated) || !strings.Contains(err.Error(), srv.URL+"/Contents") {
		t.Errorf("err = %v, want ErrTruncated naming the URL", err)
	}
	if n := srv.requests.Load(); n != 2 {
		t.Errorf("%d requests, want 2 (502 retried, body not)", n)
	}
}

func TestBadURL(t *testing.T) {
	f := New(newMemBlobs(), testOptions())
	for _, u := range []string{"ftp://example.org/x", "/relative", "http://"} {
		if _, err := f.Get(context.Background(), Request{URL: u}); err == nil || !strings.Contains(err.Error(), u) {
			t.Errorf("%q: err = %v", u, err)
		}
	}
}

func TestNewMetricsTwice(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	a.retry("h")
	b.retry("h")
	if v := counter(t, reg, "mirrord_fetch_retries_total", "host", "h"); v != 2 {
		t.Errorf("retries = %v, want 2 (shared counters)", v)
	}
	var nilMetrics *Metrics
	nilMetrics.request("h", 200)
	nilMetrics.received("h", 1)
	nilMetrics.retry("h")
}

// counter reads one counter from reg; labels are name, value pairs.
func counter(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if have[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}
