package yum

import (
	"errors"
	"fmt"
)

var (
	// ErrMismatch is wrapped when a file does not match the checksum or
	// size its index lists.
	ErrMismatch = errors.New("checksum mismatch")
	// ErrUnsafeLocation is wrapped when metadata names a file outside
	// the repository: a "../" or absolute href, or an xml:base pointing
	// off the upstream.
	ErrUnsafeLocation = errors.New("unsafe location in repository metadata")
	// ErrBadMetadata is wrapped when metadata cannot be parsed or is
	// inconsistent.
	ErrBadMetadata = errors.New("bad repository metadata")
	// ErrBadPackage is wrapped when an rpm fails its header, payload or
	// signature checks.
	ErrBadPackage = errors.New("bad package")
)

// changedError marks a failure that an upstream updating itself during
// the sync explains (a listed file gone, or not matching its index): the
// sync re-pins once from a fresh repomd.xml before giving up.
type changedError struct{ err error }

func (e *changedError) Error() string { return e.err.Error() }
func (e *changedError) Unwrap() error { return e.err }

func changed(err error) error {
	if err == nil {
		return nil
	}
	return &changedError{err: err}
}

func isChanged(err error) bool {
	var ce *changedError
	return errors.As(err, &ce)
}

// badMetadata wraps a parse error of the file at url.
func badMetadata(what, url string, err error) error {
	return fmt.Errorf("%s (%s): %w: %w", what, url, ErrBadMetadata, err)
}
