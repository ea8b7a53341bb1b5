package yum

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// want is a file to mirror: where it goes, where it comes from, and what
// its index says it is.
type want struct {
	what string // for messages: "primary metadata", "package foo-1.0-1.noarch"
	path string // in the tree
	url  string
	sum  Checksum
	size int64 // 0: unknown
	max  int64 // cap when size is unknown
}

// download mirrors one file into the store, verifying size and checksum
// while it streams in. reused is true when the previous snapshot had the
// file at this path with this checksum: then nothing is requested.
func (r *run) download(ctx context.Context, w want) (info store.Info, reused bool, err error) {
	if e, ok := r.prev.lookup(w.path); ok && (w.size == 0 || e.Size == w.size) {
		if d, ok := w.sum.SHA256(); ok && e.Digest == d {
			return store.Info{Digest: e.Digest, Size: e.Size}, true, nil
		}
		if _, ok := w.sum.SHA256(); !ok && r.storedMatches(ctx, e, w.sum) {
			return store.Info{Digest: e.Digest, Size: e.Size}, true, nil
		}
	}
	info, err = r.fetchVerified(ctx, w)
	return info, false, err
}

// fetchVerified downloads w: sha256 checksums are verified by the store
// (and a blob already stored costs no request); other checksum types are
// verified by a reader that fails the store's Put at EOF on a mismatch,
// so a bad file is never visible in the store.
func (r *run) fetchVerified(ctx context.Context, w want) (store.Info, error) {
	limit := w.max
	if w.size > 0 {
		limit = w.size
	}
	if d, ok := w.sum.SHA256(); ok {
		info, err := r.env.Fetch.Blob(ctx, w.url, store.Expect{Digest: d, Size: w.size, MaxSize: limit})
		return info, r.downloadErr(w, err)
	}
	var info store.Info
	var err error
	for attempt := 1; attempt <= 2; attempt++ {
		if info, err = r.streamVerified(ctx, w, limit); !errors.Is(err, fetch.ErrTruncated) {
			break
		}
	}
	return info, r.downloadErr(w, err)
}

// streamVerified is one download of w through a reader that checks its
// (non-sha256) checksum; the fetcher retries connecting, not a body cut
// short, which fetchVerified retries once.
func (r *run) streamVerified(ctx context.Context, w want, limit int64) (store.Info, error) {
	h, err := newHasher(w.sum)
	if err != nil {
		return store.Info{}, fmt.Errorf("%s %s: %w", w.what, w.url, err)
	}
	body, err := r.env.Fetch.Open(ctx, w.url, limit)
	if err != nil {
		return store.Info{}, err
	}
	defer body.Close()
	return r.env.Blobs.Put(ctx, &checkedReader{r: body, h: h, size: w.size}, store.Expect{Size: w.size, MaxSize: limit})
}

// downloadErr explains a failed download. A file that is missing or does
// not match its index may be an upstream update in progress: such errors
// are marked changed, so the sync re-pins once.
func (r *run) downloadErr(w want, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fetch.ErrNotFound):
		return changed(fmt.Errorf("%s %s: listed in the metadata but missing upstream: %w", w.what, w.url, err))
	case errors.Is(err, ErrMismatch):
		// From checkedReader: it names expected and got.
		return changed(fmt.Errorf("%s %s does not match the metadata: %w; if the upstream is being updated, sync again later, otherwise the upstream repository is broken", w.what, w.url, err))
	case errors.Is(err, store.ErrDigestMismatch), errors.Is(err, store.ErrSizeMismatch):
		// From the fetcher: it names the URL, expected and got.
		return changed(fmt.Errorf("%s does not match the metadata: %w: %w", w.what, ErrMismatch, err))
	}
	return fmt.Errorf("%s: %w", w.what, err)
}

// storedMatches reports whether the stored blob of e has checksum sum.
func (r *run) storedMatches(ctx context.Context, e snapshot.Entry, sum Checksum) bool {
	h, err := newHasher(sum)
	if err != nil {
		return false
	}
	b, err := r.openBlob(ctx, e.Digest)
	if err != nil {
		return false
	}
	defer b.Close()
	if _, err := io.Copy(h, b); err != nil {
		return false
	}
	return h.check(e.Size) == nil
}

// entrySet collects tree entries, refusing two different files at one
// path.
type entrySet map[string]snapshot.Entry

func (s entrySet) add(path string, info store.Info) error {
	if old, ok := s[path]; ok && old.Digest != info.Digest {
		return fmt.Errorf("%w: two different files at %s (%s and %s)", ErrBadMetadata, path, old.Digest, info.Digest)
	}
	s[path] = snapshot.Entry{Path: path, Digest: info.Digest, Size: info.Size}
	return nil
}

func (s entrySet) list() []snapshot.Entry {
	out := make([]snapshot.Entry, 0, len(s))
	for _, e := range s {
		out = append(out, e)
	}
	return out
}
