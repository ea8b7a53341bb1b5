// Package readcache keeps blobs of a remote store.Blobs (S3) in a bounded
// local directory, so hot blobs are served from local files (sendfile) and
// stay servable while the remote store is unreachable.
//
// Layout under its directory (a cache: deletable at any time while no
// process uses it):
//
//	<dir>/ab/ab12…ef        a verified copy of blob ab12…ef
//	<dir>/fill-<random>.tmp a copy being fetched
//
// Contracts:
//   - A file is only ever renamed into place after its content hashed to
//     its name, so whatever the cache serves is the blob.
//   - The total size of cached files stays at most Max (least recently
//     used first out); blobs larger than Max/4 are never cached. After a
//     restart, recency starts from the files' fill times (mtimes).
//   - Blobs.Open reads the remote store, and falls back to a cached copy
//     only when the remote store is unavailable (store.ErrUnavailable), so
//     `verify` checks the remote copy. OpenFile, used by the HTTP server,
//     prefers the cache and fills it on a miss.
//   - Delete removes the cached copy too.
package readcache

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/mirrord/mirrord/internal/store"
)

// Blobs is a store.Blobs that caches inner's blobs under a directory.
// Safe for concurrent use by one process.
type Blobs struct {
	inner store.Blobs
	dir   string
	max   int64
	log   *slog.Logger

	mu      sync.Mutex
	lru     *list.List // of *entry, most recent first
	entries map[store.Digest]*list.Element
	total   int64

	fills singleflight.Group
}

type entry struct {
	d    store.Digest
	size int64
}

var (
	_ store.Blobs     = (*Blobs)(nil)
	_ store.Syncer    = (*Blobs)(nil)
	_ store.Recoverer = (*Blobs)(nil)
)

// New returns a cache of at most max bytes in dir over inner, indexing what
// dir holds already.
func New(inner store.Blobs, dir string, max int64, log *slog.Logger) (*Blobs, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("read cache %s: %w", dir, err)
	}
	c := &Blobs{inner: inner, dir: dir, max: max, log: log, lru: list.New(), entries: map[store.Digest]*list.Element{}}
	if err := c.index(); err != nil {
		return nil, err
	}
	return c, nil
}

// Inner returns the wrapped store.
func (c *Blobs) Inner() store.Blobs { return c.inner }

// Dir returns the cache directory.
func (c *Blobs) Dir() string { return c.dir }

func (c *Blobs) path(d store.Digest) string { return filepath.Join(c.dir, string(d[:2]), string(d)) }

// index loads the files in dir, oldest mtime least recent, removing
// leftovers of interrupted fills and evicting past max.
func (c *Blobs) index() error {
	type found struct {
		d    store.Digest
		size int64
		mt   time.Time
	}
	var all []found
	err := filepath.WalkDir(c.dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		if strings.HasPrefix(de.Name(), "fill-") {
			os.Remove(p)
			return nil
		}
		d, err := store.ParseDigest(de.Name())
		if err != nil || filepath.Base(filepath.Dir(p)) != string(d[:2]) {
			return nil
		}
		fi, err := de.Info()
		if err != nil {
			return nil
		}
		all = append(all, found{d, fi.Size(), fi.ModTime()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("read cache %s: %w", c.dir, err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mt.Before(all[j].mt) })
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range all {
		c.addLocked(f.d, f.size)
	}
	c.evictLocked()
	return nil
}

func (c *Blobs) addLocked(d store.Digest, size int64) {
	if el, ok := c.entries[d]; ok {
		c.lru.MoveToFront(el)
		return
	}
	c.entries[d] = c.lru.PushFront(&entry{d, size})
	c.total += size
}

func (c *Blobs) evictLocked() {
	for c.total > c.max {
		el := c.lru.Back()
		if el == nil {
			return
		}
		e := el.Value.(*entry)
		c.removeLocked(e.d)
	}
}

func (c *Blobs) removeLocked(d store.Digest) {
	el, ok := c.entries[d]
	if !ok {
		return
	}
	e := el.Value.(*entry)
	c.lru.Remove(el)
	delete(c.entries, d)
	c.total -= e.size
	os.Remove(c.path(d)) // an open file stays readable until closed
}

// Stats reports how many blobs are cached and their total size.
func (c *Blobs) Stats() (int, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.total
}

// openCached opens d's cached file and marks it recently used.
func (c *Blobs) openCached(d store.Digest) (*os.File, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[d]
	if !ok {
		return nil, false
	}
	f, err := os.Open(c.path(d))
	if err != nil {
		// Deleted behind our back (someone cleared the cache).
		c.lru.Remove(el)
		delete(c.entries, d)
		c.total -= el.Value.(*entry).size
		return nil, false
	}
	c.lru.MoveToFront(el)
	return f, true
}

// OpenFile returns a local file holding blob d, fetching it into the cache
// on a miss. ok is false (and err nil) when the blob is too large to cache;
// the caller then reads the remote store. Concurrent misses of one blob
// fetch it once.
func (c *Blobs) OpenFile(ctx context.Context, d store.Digest) (f *os.File, ok bool, err error) {
	if _, err := store.ParseDigest(string(d)); err != nil {
		return nil, false, fmt.Errorf("open: %w", err)
	}
	if f, ok := c.openCached(d); ok {
		return f, true, nil
	}
	ch := c.fills.DoChan(string(d), func() (any, error) {
		// Not tied to one request: others may be waiting for it.
		return c.fill(context.WithoutCancel(ctx), d)
	})
	select {
	case <-ctx.Done():
		return nil, false, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return nil, false, r.Err
		}
		if !r.Val.(bool) {
			return nil, false, nil
		}
	}
	if f, ok := c.openCached(d); ok {
		return f, true, nil
	}
	return nil, false, nil // evicted at once (a tiny cache): read remotely
}

// fill copies blob d from the remote store into the cache, verifying it.
// It reports false when d is too large to cache.
func (c *Blobs) fill(ctx context.Context, d store.Digest) (bool, error) {
	info, err := c.inner.Stat(ctx, d)
	if err != nil {
		return false, err
	}
	if info.Size > c.max/4 {
		return false, nil
	}
	b, err := c.inner.Open(ctx, d)
	if err != nil {
		return false, err
	}
	defer b.Close()
	tmp, err := os.CreateTemp(c.dir, "fill-*.tmp")
	if err != nil {
		return false, fmt.Errorf("read cache: %w", err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), b)
	if err != nil {
		return false, fmt.Errorf("read cache: fetching %s: %w", d, err)
	}
	if got := store.Digest(hex.EncodeToString(h.Sum(nil))); got != d || n != info.Size {
		return false, fmt.Errorf("read cache: blob %s from the store has sha256 %s (%d bytes, want %d): %w", d, got, n, info.Size, store.ErrDigestMismatch)
	}
	if err := tmp.Close(); err != nil {
		return false, fmt.Errorf("read cache: %w", err)
	}
	final := c.path(d)
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil {
		return false, fmt.Errorf("read cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return false, fmt.Errorf("read cache: %w", err)
	}
	c.mu.Lock()
	c.addLocked(d, n)
	c.evictLocked()
	c.mu.Unlock()
	return true, nil
}

// Open implements store.Blobs: the remote blob, or the cached copy when the
// remote store is unavailable.
func (c *Blobs) Open(ctx context.Context, d store.Digest) (store.Blob, error) {
	b, err := c.inner.Open(ctx, d)
	if err == nil || !errors.Is(err, store.ErrUnavailable) {
		return b, err
	}
	if f, ok := c.openCached(d); ok {
		return newFileBlob(f)
	}
	return nil, err
}

// Stat implements store.Blobs, answering from the cache when the remote
// store is unavailable.
func (c *Blobs) Stat(ctx context.Context, d store.Digest) (store.Info, error) {
	info, err := c.inner.Stat(ctx, d)
	if err == nil || !errors.Is(err, store.ErrUnavailable) {
		return info, err
	}
	c.mu.Lock()
	el, ok := c.entries[d]
	c.mu.Unlock()
	if !ok {
		return info, err
	}
	fi, serr := os.Stat(c.path(d))
	if serr != nil {
		return info, err
	}
	return store.Info{Digest: d, Size: el.Value.(*entry).size, ModTime: fi.ModTime()}, nil
}

// Put implements store.Blobs.
func (c *Blobs) Put(ctx context.Context, r io.Reader, exp store.Expect) (store.Info, error) {
	return c.inner.Put(ctx, r, exp)
}

// List implements store.Blobs.
func (c *Blobs) List(ctx context.Context, fn func(store.Info) error) error {
	return c.inner.List(ctx, fn)
}

// Delete implements store.Blobs, dropping the cached copy too.
func (c *Blobs) Delete(ctx context.Context, d store.Digest) error {
	if err := c.inner.Delete(ctx, d); err != nil {
		return err
	}
	c.mu.Lock()
	c.removeLocked(d)
	c.mu.Unlock()
	return nil
}

// Sync implements store.Syncer for stores that batch durability.
func (c *Blobs) Sync(ctx context.Context) error {
	if s, ok := c.inner.(store.Syncer); ok {
		return s.Sync(ctx)
	}
	return nil
}

// Recover implements store.Recoverer for stores that have it.
func (c *Blobs) Recover(ctx context.Context) (int, error) {
	if r, ok := c.inner.(store.Recoverer); ok {
		return r.Recover(ctx)
	}
	return 0, nil
}

// CleanTemp implements store.Blobs.
func (c *Blobs) CleanTemp(ctx context.Context, age time.Duration) (int, error) {
	return c.inner.CleanTemp(ctx, age)
}

// fileBlob is a cached file as a store.Blob; File exposes it for sendfile.
type fileBlob struct {
	f    *os.File
	size int64
}

func newFileBlob(f *os.File) (store.Blob, error) {
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &fileBlob{f: f, size: fi.Size()}, nil
}

func (b *fileBlob) Read(p []byte) (int, error)                { return b.f.Read(p) }
func (b *fileBlob) Seek(off int64, whence int) (int64, error) { return b.f.Seek(off, whence) }
func (b *fileBlob) Close() error                              { return b.f.Close() }
func (b *fileBlob) Size() int64                               { return b.size }
func (b *fileBlob) File() *os.File                            { return b.f }
