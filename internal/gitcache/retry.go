package gitcache

import (
	"compress/zlib"
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"syscall"
	"time"

	"github.com/go-git/go-git/v5/plumbing"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/mirrord/mirrord/internal/ctxtime"
	"github.com/mirrord/mirrord/internal/fetch"
)

// maxRetryAfter caps how long a 429's Retry-After makes a retry wait.
const maxRetryAfter = 30 * time.Second

// retry runs op, and again up to retries times while it fails with a
// transient upstream error (5xx, 429, a reset or cut connection, a stall,
// a pack damaged on the way), waiting 500 ms, 1 s, 2 s, … (or the 429's
// Retry-After) in between. The last error is returned as it is.
func retry(ctx context.Context, log *slog.Logger, retries int, what string, op func() error) error {
	wait := 500 * time.Millisecond
	for attempt := 0; ; attempt++ {
		err := op()
		if err == nil || attempt >= retries || ctx.Err() != nil {
			return err
		}
		d, ok := transient(err)
		if !ok {
			return err
		}
		d = max(d, wait)
		log.Warn("git upstream failed; retrying", "what", what, "attempt", attempt+1, "of", retries, "in", d, "err", err)
		if ctxtime.Sleep(ctx, d) != nil {
			return err
		}
		wait *= 2
	}
}

// transient reports whether retrying err may help, and how long the
// upstream asked to wait (a 429's Retry-After, else 0). go-git's HTTP
// errors hide in an UnexpectedError that does not unwrap.
func transient(err error) (time.Duration, bool) {
	var ue *plumbing.UnexpectedError
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var he *githttp.Err
	if errors.As(err, &he) {
		code := he.StatusCode()
		if code == 429 {
			secs, _ := strconv.Atoi(he.Response.Header.Get("Retry-After"))
			return min(time.Duration(secs)*time.Second, maxRetryAfter), true
		}
		return 0, code >= 500
	}
	return 0, errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, fetch.ErrStalled) || errors.Is(err, zlib.ErrChecksum)
}
