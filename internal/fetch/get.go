package fetch

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"

	"github.com/mirrord/mirrord/internal/store"
)

// Request is a small-document fetch.
type Request struct {
	URL string
	// MaxSize caps the body (default 64 MiB); a larger body fails with
	// an error wrapping ErrTooLarge.
	MaxSize int64
	// ETag and LastModified, from an earlier Response, make the request
	// conditional: an unchanged document yields NotModified.
	ETag         string
	LastModified string
}

// Response is a fetched document.
type Response struct {
	Body         []byte // nil when NotModified
	ETag         string
	LastModified string
	NotModified  bool
	Status       int
}

// Get fetches a small document (index, InRelease, repomd.xml) into
// memory, with the same retries and host limit as Blob.
func (f *Fetcher) Get(ctx context.Context, req Request) (*Response, error) {
	u, err := parseURL(req.URL)
	if err != nil {
		return nil, err
	}
	if req.MaxSize <= 0 {
		req.MaxSize = DefaultGetMaxSize
	}
	var resp *Response
	err = f.retry(ctx, u, func() error {
		var err error
		resp, err = f.getOnce(ctx, u, req)
		return err
	})
	return resp, err
}

func (f *Fetcher) getOnce(ctx context.Context, u *url.URL, req Request) (*Response, error) {
	hdr := http.Header{}
	if req.ETag != "" {
		hdr.Set("If-None-Match", req.ETag)
	}
	if req.LastModified != "" {
		hdr.Set("If-Modified-Since", req.LastModified)
	}
	x, err := f.start(ctx, u, hdr, req.ETag != "" || req.LastModified != "")
	if err != nil {
		return nil, err
	}
	defer x.close(true)
	resp := &Response{
		ETag:         x.resp.Header.Get("ETag"),
		LastModified: x.resp.Header.Get("Last-Modified"),
		Status:       x.resp.StatusCode,
	}
	if x.resp.StatusCode == http.StatusNotModified {
		resp.NotModified = true
		resp.ETag = firstNonEmpty(resp.ETag, req.ETag)
		resp.LastModified = firstNonEmpty(resp.LastModified, req.LastModified)
		return resp, nil
	}
	if err := x.checkLength(store.Expect{MaxSize: req.MaxSize}); err != nil {
		return nil, err
	}
	resp.Body, err = io.ReadAll(io.LimitReader(x.body, req.MaxSize+1))
	if err != nil {
		return nil, x.readErr(err)
	}
	if int64(len(resp.Body)) > req.MaxSize {
		return nil, fmt.Errorf("fetch %s: body exceeds the %d byte limit: %w", u, req.MaxSize, ErrTooLarge)
	}
	return resp, nil
}

// firstNonEmpty returns the first non-empty string.
func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Open streams the body of rawURL. The host slot is held until Close.
// Connecting is retried like Get, but not once the body has started;
// reading past maxSize (0: store.DefaultMaxSize) fails with an error
// wrapping ErrTooLarge. Read errors name the URL.
func (f *Fetcher) Open(ctx context.Context, rawURL string, maxSize int64) (io.ReadCloser, error) {
	u, err := parseURL(rawURL)
	if err != nil {
		return nil, err
	}
	if maxSize <= 0 {
		maxSize = store.DefaultMaxSize
	}
	var x *exchange
	err = f.retry(ctx, u, func() error {
		var err error
		x, err = f.start(ctx, u, nil, false)
		if err == nil {
			if err = x.checkLength(store.Expect{MaxSize: maxSize}); err != nil {
				x.close(true)
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return &stream{x: x, max: maxSize}, nil
}

// stream is the body returned by Open.
type stream struct {
	x    *exchange
	max  int64
	err  error
	once sync.Once
}

func (s *stream) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if room := s.max + 1 - s.x.body.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := s.x.body.Read(p)
	if over := s.x.body.n - s.max; over > 0 {
		s.err = fmt.Errorf("fetch %s: body exceeds the %d byte limit: %w", s.x.url, s.max, ErrTooLarge)
		return n - int(over), s.err
	}
	if err != nil && err != io.EOF {
		s.err = s.x.readErr(err)
		return n, s.err
	}
	return n, err
}

// Close frees the host slot; it may be called more than once.
func (s *stream) Close() error {
	s.once.Do(func() { s.x.close(false) })
	return nil
}
