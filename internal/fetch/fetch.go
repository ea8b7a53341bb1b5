// Package fetch downloads upstream files: blobs straight into the store
// (verified while streaming), small documents into memory, and big indices
// as streams. It retries transient failures with backoff, bounds the number
// of concurrent requests per host and deduplicates identical downloads.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/sync/singleflight"

	"github.com/mirrord/mirrord/internal/store"
)

// Defaults for zero Options fields.
const (
	DefaultPerHost      = 4
	DefaultRetries      = 3
	DefaultBackoff      = 500 * time.Millisecond
	DefaultStallTimeout = 2 * time.Minute
	DefaultUserAgent    = "mirrord"
	// DefaultGetMaxSize caps Get when Request.MaxSize is 0.
	DefaultGetMaxSize = 64 << 20

	maxBackoff    = 30 * time.Second // cap of the exponential backoff
	maxRetryAfter = 2 * time.Minute  // cap on a server's Retry-After
)

// Options configure a Fetcher. Zero fields take the defaults above.
type Options struct {
	// Client does the requests; by default a client whose transport
	// times out waiting for response headers after a minute.
	Client *http.Client
	// PerHost bounds concurrent requests to one host (default 4).
	PerHost int
	// Retries is how many times a transient failure is retried
	// (default 3; negative disables retrying).
	Retries int
	// Backoff is the first retry delay; it doubles per retry, with
	// jitter, capped at 30s (or Backoff, if larger). Default 500ms.
	Backoff time.Duration
	// StallTimeout aborts (and retries) a request when waiting for the
	// response or for body data takes longer (default 2m; negative
	// disables it). Time the caller spends between reads does not count.
	StallTimeout time.Duration
	// UserAgent is sent with every request (default "mirrord").
	UserAgent string
	// Logger receives retry warnings (default: discard).
	Logger *slog.Logger
	// Metrics counts requests, bytes and retries; may be nil.
	Metrics *Metrics
	// OnBytes, if set, is called with the size of every chunk of body
	// data as it arrives (including attempts that later fail), from
	// many goroutines at once.
	OnBytes func(n int64)
}

func (o Options) withDefaults() Options {
	if o.Client == nil {
		o.Client = defaultClient()
	}
	if o.PerHost <= 0 {
		o.PerHost = DefaultPerHost
	}
	switch {
	case o.Retries == 0:
		o.Retries = DefaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func defaultClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t}
}

// Fetcher downloads from upstreams. It is safe for concurrent use.
type Fetcher struct {
	blobs store.Blobs
	opt   Options
	group singleflight.Group

	mu    sync.Mutex
	hosts map[string]*semaphore.Weighted
}

// New returns a Fetcher that stores blobs in blobs.
func New(blobs store.Blobs, opt Options) *Fetcher {
	return &Fetcher{
		blobs: blobs,
		opt:   opt.withDefaults(),
		hosts: make(map[string]*semaphore.Weighted),
	}
}

// hostSlots is the request semaphore of host.
func (f *Fetcher) hostSlots(host string) *semaphore.Weighted {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.hosts[host]
	if s == nil {
		s = semaphore.NewWeighted(int64(f.opt.PerHost))
		f.hosts[host] = s
	}
	return s
}

// progress reports n body bytes received from host.
func (f *Fetcher) progress(host string, n int64) {
	f.opt.Metrics.received(host, n)
	if f.opt.OnBytes != nil {
		f.opt.OnBytes(n)
	}
}

// parseURL accepts absolute http and https URLs, and file:///abs/path URLs
// (the client's transport must have a "file" protocol registered).
func parseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("fetch %q: bad URL: %w", raw, err)
	}
	if u.Scheme == "file" && u.Host == "" && strings.HasPrefix(u.Path, "/") {
		return u, nil
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("fetch %s: unsupported URL scheme %q (want http or https)", raw, u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("fetch %s: URL has no host", raw)
	}
	return u, nil
}

// Blob downloads rawURL into the store; the store verifies exp while the
// body streams in. With exp.Digest set, a blob already in the store is
// returned without any request. Concurrent calls for the same digest (or
// the same URL when the digest is unknown) share one download.
func (f *Fetcher) Blob(ctx context.Context, rawURL string, exp store.Expect) (store.Info, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return store.Info{}, err
	}
	key := "url:" + rawURL
	if exp.Digest != "" {
		key = "sha256:" + string(exp.Digest)
	}
	return f.shared(ctx, key, rawURL, func(ctx context.Context) (store.Info, error) {
		return f.blob(ctx, u, exp)
	})
}

// shared runs fn once for all concurrent callers with the same key. fn
// runs with the context of the caller that started it; if that caller
// gives up, a waiting caller whose context is still live takes over.
func (f *Fetcher) shared(ctx context.Context, key, rawURL string, fn func(context.Context) (store.Info, error)) (store.Info, error) {
	for {
		var led atomic.Bool
		ch := f.group.DoChan(key, func() (any, error) {
			led.Store(true)
			return fn(ctx)
		})
		var r singleflight.Result
		select {
		case <-ctx.Done():
			if !led.Load() {
				return store.Info{}, fmt.Errorf("fetch %s: %w", rawURL, ctx.Err())
			}
			r = <-ch // fn runs with ctx: it ends promptly, with a better error
		case r = <-ch:
		}
		if r.Err == nil {
			return r.Val.(store.Info), nil
		}
		if !led.Load() && ctx.Err() == nil && isContextErr(r.Err) {
			continue // the leader was cancelled, not us: take over
		}
		return store.Info{}, r.Err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// blob is Blob without deduplication.
func (f *Fetcher) blob(ctx context.Context, u *url.URL, exp store.Expect) (store.Info, error) {
	if exp.Digest != "" {
		info, err := f.blobs.Stat(ctx, exp.Digest)
		if err == nil && exp.Size > 0 && info.Size != exp.Size {
			return store.Info{}, fmt.Errorf("fetch %s: the index says %d bytes, but the stored blob %s has %d: %w", u, exp.Size, exp.Digest, info.Size, store.ErrSizeMismatch)
		}
		if err == nil {
			return info, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.Info{}, fmt.Errorf("fetch %s: check store for %s: %w", u, exp.Digest, err)
		}
	}
	var info store.Info
	err := f.retry(ctx, u, func() error {
		var err error
		info, err = f.blobOnce(ctx, u, exp)
		return err
	})
	return info, err
}

// blobOnce is one download attempt of a blob.
func (f *Fetcher) blobOnce(ctx context.Context, u *url.URL, exp store.Expect) (store.Info, error) {
	x, err := f.start(ctx, u, nil, false)
	if err != nil {
		return store.Info{}, err
	}
	defer x.close(true)
	if err := x.checkLength(exp); err != nil {
		return store.Info{}, err
	}
	info, err := f.blobs.Put(ctx, x.body, exp)
	if err != nil {
		return store.Info{}, x.putError(exp, err)
	}
	return info, nil
}

type progressKey struct{}

// WithProgress returns a context under which every body byte the Fetcher
// receives is also counted by fn (typically a progress task's Fetched), so
// a task's rate reflects what was really downloaded. fn is called from
// many goroutines at once. With in-flight dedupe, the bytes count for the
// caller whose request ran.
func WithProgress(ctx context.Context, fn func(n int64)) context.Context {
	return context.WithValue(ctx, progressKey{}, fn)
}
