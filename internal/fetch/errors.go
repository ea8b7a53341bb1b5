package fetch

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mirrord/mirrord/internal/store"
)

var (
	// ErrNotFound is matched (errors.Is) by an *HTTPError for 404 and 410.
	ErrNotFound = errors.New("not found upstream")
	// ErrTooLarge is store.ErrTooLarge, so that one errors.Is check covers
	// Blob (where the store enforces the cap), Get and Open.
	ErrTooLarge = store.ErrTooLarge
	// ErrTruncated is wrapped when a body ended before its Content-Length
	// (or expected size), or stalled.
	ErrTruncated = errors.New("response body truncated")
)

// HTTPError is returned for a non-2xx response (other than 304 to a
// conditional Get).
type HTTPError struct {
	URL    string
	Status int

	retryAfter time.Duration // from a Retry-After header, if any
}

func (e *HTTPError) Error() string {
	prefix := fmt.Sprintf("upstream returned %d %s for %s", e.Status, http.StatusText(e.Status), e.URL)
	switch {
	case e.Status == http.StatusNotFound || e.Status == http.StatusGone:
		return fmt.Sprintf("upstream returned %d for %s: check the url/suite in your config", e.Status, e.URL)
	case e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden:
		return prefix + ": access denied; check credentials and that the mirror serves this path"
	case e.Status == http.StatusTooManyRequests:
		return prefix + ": rate limited; lower per-host concurrency or sync less often"
	case e.Status >= 500:
		return prefix + ": upstream server error; try again later or use another mirror"
	}
	return prefix
}

// Is makes errors.Is(err, ErrNotFound) true for 404 and 410.
func (e *HTTPError) Is(target error) bool {
	return target == ErrNotFound && (e.Status == http.StatusNotFound || e.Status == http.StatusGone)
}

// temporary reports whether retrying the request may help.
func (e *HTTPError) temporary() bool {
	return e.Status >= 500 || e.Status == http.StatusTooManyRequests
}

// IndexMismatch adds, to a digest or size mismatch, what it means when the
// expectation came from an upstream index (apt Release/Packages, yum
// repomd/primary): the upstream is inconsistent, typically mid-update.
// Other errors are returned as they are.
func IndexMismatch(err error) error {
	if isMismatch(err) {
		return fmt.Errorf("%w (the upstream file does not match its index; the mirror may be mid-update, retry later)", err)
	}
	return err
}

// ConfigMismatch is IndexMismatch for an expectation written in mirrord's
// config (a file source's sha256).
func ConfigMismatch(err error) error {
	if isMismatch(err) {
		return fmt.Errorf("%w: the file differs from the sha256 in the config (the upstream changed it, or the digest in the config is wrong: check it with sha256sum and update the config)", err)
	}
	return err
}

func isMismatch(err error) bool {
	return (errors.Is(err, store.ErrDigestMismatch) || errors.Is(err, store.ErrSizeMismatch)) && !errors.Is(err, ErrTruncated)
}
