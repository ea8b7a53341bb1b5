package fetch

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"

	"github.com/mirrord/mirrord/internal/ctxtime"
)

// transient marks an error worth retrying. once limits it to one retry
// per operation (a mismatch that may be due to a silently short body).
type transient struct {
	err  error
	once bool
}

func (t *transient) Error() string { return t.err.Error() }
func (t *transient) Unwrap() error { return t.err }

// retry runs attempt until it succeeds, fails for good, retries run out or
// ctx ends, sleeping with exponential backoff between attempts.
func (f *Fetcher) retry(ctx context.Context, u *url.URL, attempt func() error) error {
	usedOnce := false
	for n := 0; ; n++ {
		err := attempt()
		if err == nil {
			return nil
		}
		var t *transient
		if !errors.As(err, &t) || ctx.Err() != nil {
			return err
		}
		if n >= f.opt.Retries || (t.once && usedOnce) {
			return fmt.Errorf("%w (gave up after %d attempts)", err, n+1)
		}
		usedOnce = usedOnce || t.once
		wait := f.backoff(n, err)
		f.opt.Metrics.retry(u.Host)
		f.opt.Logger.Warn("fetch failed, retrying", "url", u.String(), "attempt", n+1, "wait", wait, "err", err)
		if err := ctxtime.Sleep(ctx, wait); err != nil {
			return fmt.Errorf("fetch %s: %w while waiting to retry (last error: %v)", u, err, t.err)
		}
	}
}

// backoff is the delay before retry n (0-based): Backoff·2ⁿ, capped, with
// jitter in [d/2, d]; a longer Retry-After from the server wins.
func (f *Fetcher) backoff(n int, err error) time.Duration {
	limit := max(maxBackoff, f.opt.Backoff)
	d := f.opt.Backoff << min(n, 30)
	if d <= 0 || d > limit {
		d = limit
	}
	d = d/2 + rand.N(d/2+1)
	var he *HTTPError
	if errors.As(err, &he) && he.retryAfter > d {
		d = min(he.retryAfter, maxRetryAfter)
	}
	return d
}
