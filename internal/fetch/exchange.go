package fetch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/mirrord/mirrord/internal/store"
)

// errStalled is the cancellation cause of a request that made no progress.
var errStalled = errors.New("upstream stalled")

// exchange is one request attempt: it holds a host slot until closed.
type exchange struct {
	url    string
	parent context.Context // the caller's context
	ctx    context.Context // the request's, cancelled on stall or close
	cancel context.CancelCauseFunc
	slots  *semaphore.Weighted
	dog    *watchdog
	resp   *http.Response
	body   *countingBody
}

// start sends a GET for u once a host slot is free. Non-2xx responses
// (except 304 when allowNotModified) become errors; on success the caller
// must close the exchange.
func (f *Fetcher) start(ctx context.Context, u *url.URL, hdr http.Header, allowNotModified bool) (*exchange, error) {
	slots := f.hostSlots(u.Host)
	if err := slots.Acquire(ctx, 1); err != nil {
		return nil, fmt.Errorf("fetch %s: waiting for a connection slot: %w", u, err)
	}
	x := &exchange{url: u.String(), parent: ctx, slots: slots}
	x.ctx, x.cancel = context.WithCancelCause(ctx)
	x.dog = newWatchdog(f.opt.StallTimeout, x.cancel)
	req, err := http.NewRequestWithContext(x.ctx, http.MethodGet, x.url, nil)
	if err != nil {
		x.close(false)
		return nil, fmt.Errorf("fetch %s: %w", x.url, err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", f.opt.UserAgent)
	// Exact bytes and a usable Content-Length: no transparent gzip.
	req.Header.Set("Accept-Encoding", "identity")
	if err := x.send(f, req, u.Host); err != nil {
		x.close(true)
		return nil, err
	}
	if err := x.checkStatus(allowNotModified); err != nil {
		x.close(true)
		return nil, err
	}
	return x, nil
}

// send does the request and wraps the body for counting.
func (x *exchange) send(f *Fetcher, req *http.Request, host string) error {
	x.dog.arm()
	resp, err := f.opt.Client.Do(req)
	x.dog.disarm()
	if err != nil {
		f.opt.Metrics.request(host, 0)
		return x.transportError(err)
	}
	f.opt.Metrics.request(host, resp.StatusCode)
	x.resp = resp
	observe, _ := x.parent.Value(progressKey{}).(func(int64))
	x.body = &countingBody{r: resp.Body, dog: x.dog, progress: func(n int64) {
		f.progress(host, n)
		if observe != nil {
			observe(n)
		}
	}}
	return nil
}

func (x *exchange) checkStatus(allowNotModified bool) error {
	code := x.resp.StatusCode
	if (code >= 200 && code < 300) || (code == http.StatusNotModified && allowNotModified) {
		return nil
	}
	he := &HTTPError{URL: x.url, Status: code, retryAfter: retryAfter(x.resp.Header.Get("Retry-After"))}
	if he.temporary() {
		return &transient{err: he}
	}
	return he
}

// close ends the attempt and frees the host slot. drain reads a little of
// what is left so the connection can be reused; it must not run
// concurrently with a Read.
func (x *exchange) close(drain bool) {
	if x.resp != nil {
		if drain {
			_, _ = io.CopyN(io.Discard, x.resp.Body, 4<<10)
		}
		x.resp.Body.Close()
	}
	x.dog.disarm()
	x.cancel(context.Canceled)
	x.slots.Release(1)
}

// declared is the body size announced by the server, or -1.
func (x *exchange) declared() int64 { return x.resp.ContentLength }

// checkLength refuses a body whose Content-Length already contradicts exp.
func (x *exchange) checkLength(exp store.Expect) error {
	n := x.declared()
	if n < 0 {
		return nil
	}
	if exp.Size > 0 && n != exp.Size {
		return fmt.Errorf("fetch %s: upstream announces %d bytes, expected %d: %w", x.url, n, exp.Size, store.ErrSizeMismatch)
	}
	limit := exp.MaxSize
	if limit <= 0 {
		limit = store.DefaultMaxSize
	}
	if n > limit {
		return fmt.Errorf("fetch %s: upstream announces %d bytes, over the %d byte limit: %w", x.url, n, limit, ErrTooLarge)
	}
	return nil
}

// putError classifies a failed store.Put of the body.
func (x *exchange) putError(exp store.Expect, err error) error {
	if x.body.err != nil {
		return x.readErr(x.body.err)
	}
	if x.parent.Err() != nil {
		return fmt.Errorf("fetch %s: %w", x.url, x.parent.Err())
	}
	if errors.Is(err, store.ErrDigestMismatch) || errors.Is(err, store.ErrSizeMismatch) {
		want := x.declared()
		if want < 0 {
			want = exp.Size
		}
		if want > 0 && x.body.n < want {
			// The body ended early without an error: worth one more try.
			return &transient{once: true, err: fmt.Errorf("fetch %s: body ended after %d of %d bytes: %w: %w", x.url, x.body.n, want, ErrTruncated, err)}
		}
		return fmt.Errorf("fetch %s: %w", x.url, err)
	}
	if errors.Is(err, store.ErrTooLarge) {
		return fmt.Errorf("fetch %s: %w", x.url, err)
	}
	return fmt.Errorf("fetch %s: store: %w", x.url, err)
}

// transportError classifies a failed client.Do.
func (x *exchange) transportError(err error) error {
	if x.parent.Err() != nil {
		return fmt.Errorf("fetch %s: %w", x.url, x.parent.Err())
	}
	if errors.Is(context.Cause(x.ctx), errStalled) {
		return &transient{err: fmt.Errorf("fetch %s: no response within %v: %w", x.url, x.dog.d, errStalled)}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // it repeats the URL
	}
	if errors.Is(err, ErrUnsafeLocalFile) {
		return err // retrying cannot help
	}
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		return fmt.Errorf("fetch %s: %w (check the system CA certificates, or the host name in the URL)", x.url, err)
	}
	return &transient{err: fmt.Errorf("fetch %s: %w", x.url, err)}
}

// readErr classifies a failed body read.
func (x *exchange) readErr(err error) error {
	if x.parent.Err() != nil {
		return fmt.Errorf("fetch %s: %w", x.url, x.parent.Err())
	}
	of := "?"
	if n := x.declared(); n >= 0 {
		of = strconv.FormatInt(n, 10)
	}
	if errors.Is(context.Cause(x.ctx), errStalled) {
		return &transient{err: fmt.Errorf("fetch %s: no data for %v after %d of %s bytes: %w: %w", x.url, x.dog.d, x.body.n, of, ErrTruncated, errStalled)}
	}
	what := "reading body failed"
	if errors.Is(err, io.ErrUnexpectedEOF) {
		what = "connection closed"
	}
	return &transient{err: fmt.Errorf("fetch %s: %s after %d of %s bytes: %w: %w", x.url, what, x.body.n, of, ErrTruncated, err)}
}

// retryAfter parses a Retry-After header (seconds or HTTP date).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

// countingBody reports progress and remembers the first read error.
type countingBody struct {
	r        io.Reader
	dog      *watchdog
	progress func(int64)
	n        int64
	err      error
}

func (b *countingBody) Read(p []byte) (int, error) {
	b.dog.arm()
	n, err := b.r.Read(p)
	b.dog.disarm()
	if n > 0 {
		b.n += int64(n)
		b.progress(int64(n))
	}
	if err != nil && err != io.EOF && b.err == nil {
		b.err = err
	}
	return n, err
}

// watchdog cancels a request when one wait (for headers, or inside one
// Read) exceeds d. A nil watchdog is disabled.
type watchdog struct {
	t *time.Timer
	d time.Duration
}

func newWatchdog(d time.Duration, cancel context.CancelCauseFunc) *watchdog {
	if d <= 0 {
		return nil
	}
	t := time.AfterFunc(d, func() { cancel(errStalled) })
	t.Stop()
	return &watchdog{t: t, d: d}
}

func (w *watchdog) arm() {
	if w != nil {
		w.t.Reset(w.d)
	}
}

func (w *watchdog) disarm() {
	if w != nil {
		w.t.Stop()
	}
}
