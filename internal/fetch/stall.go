package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// ErrStalled is wrapped by StallTransport's errors: the upstream sent
// nothing for the stall timeout (no response headers, or no body bytes).
var ErrStalled = errStalled

// StallTransport wraps rt so that a request whose response headers, or
// whose next body bytes, do not arrive within d fails wrapping ErrStalled
// (the Fetcher's own StallTimeout, for clients that are not the Fetcher:
// go-git's HTTP transport). d <= 0 returns rt unchanged.
func StallTransport(rt http.RoundTripper, d time.Duration) http.RoundTripper {
	if d <= 0 {
		return rt
	}
	return stallTransport{rt: rt, d: d}
}

type stallTransport struct {
	rt http.RoundTripper
	d  time.Duration
}

func (s stallTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx, cancel := context.WithCancelCause(req.Context())
	dog := time.AfterFunc(s.d, func() { cancel(errStalled) })
	resp, err := s.rt.RoundTrip(req.WithContext(ctx))
	if err != nil {
		dog.Stop()
		stalled := errors.Is(context.Cause(ctx), errStalled)
		cancel(nil)
		if stalled {
			return nil, fmt.Errorf("%s %s: no response within %v: %w", req.Method, req.URL.Redacted(), s.d, errStalled)
		}
		return nil, err
	}
	dog.Reset(s.d)
	resp.Body = &stallBody{rc: resp.Body, dog: dog, d: s.d, ctx: ctx, cancel: cancel, url: req.URL.Redacted()}
	return resp, nil
}

// stallBody re-arms the watchdog on every read that brings data.
type stallBody struct {
	rc     io.ReadCloser
	dog    *time.Timer
	d      time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
	url    string
}

func (b *stallBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.dog.Reset(b.d)
	}
	if err != nil && err != io.EOF && errors.Is(context.Cause(b.ctx), errStalled) {
		err = fmt.Errorf("%s: no data for %v: %w", b.url, b.d, errStalled)
	}
	return n, err
}

func (b *stallBody) Close() error {
	b.dog.Stop()
	b.cancel(nil)
	return b.rc.Close()
}
