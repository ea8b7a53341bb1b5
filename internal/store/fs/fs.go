// Package fs is the local-filesystem implementation of store.Store.
//
// Layout under the store's root directory:
//
//	<root>/
//	├── blobs/
//	│   └── sha256/
//	│       └── ab/                    fan-out: first two hex digits
//	│           └── ab12…ef            one file per blob, named by its digest, mode 0444
//	├── tmp/
//	│   ├── put-<random>.tmp           blob being written by Put
//	│   └── meta-<random>.tmp          metadata value being written by Meta.Put/Create
//	├── meta/
//	│   └── snapshots/debian/2024…     metadata value for key "snapshots/debian/2024…"
//	├── unsynced                       marker: blobs written since the last Sync (durable.go)
//	└── locks/
//	    └── <name>.lock                flock(2) target for Lock/TryLock
//
// Contracts (beyond those of package store):
//   - Put streams into tmp/, hashing as it goes, and stops reading once the
//     stream passes Expect.MaxSize (store.DefaultMaxSize when 0) or a known
//     Expect.Size. Only a verified, read-only file is renamed into blobs/.
//     Every failure removes the temp file. Durability is batched (see
//     durable.go): Sync, called before a snapshot record is written, flushes
//     everything with syncfs(2); Recover re-hashes what a crashed process
//     wrote but never synced.
//   - When Expect.Digest is set and that blob is already present, Put returns
//     at once without reading r (callers rely on this to skip downloads); it
//     only refreshes the blob's mtime, which gc uses for its grace period.
//   - A temp file is only left behind by a crash; CleanTemp removes those
//     whose mtime is older than age. A Put in progress keeps its temp's mtime
//     fresh while data flows, so age must exceed the longest stall of a
//     source.
//   - Digests given to Open, Stat and Delete are validated with
//     store.ParseDigest, so a digest can never name a path outside the store.
//     BlobPath returns "" for an invalid digest.
//   - Meta keys map to files under meta/, one directory per segment. Put
//     renames a fsynced temp over the value; Create hard-links a fully written
//     temp to the key, so the value appears whole or not at all, also across
//     processes. Delete prunes directories it leaves empty. A key cannot be
//     both a value and a prefix of other keys in this backend.
//   - Locks are flock(2) locks on locks/<name>.lock (name is a Meta-style
//     key). The kernel releases them when the holder dies, including by
//     SIGKILL. Two TryLock calls conflict even within one process. Keep the
//     unlock func reachable while holding the lock. Lock files are never
//     removed (removing them would race with waiters).
//
// Blobs returned by Open are *BlobFile values; their File method exposes the
// *os.File so an HTTP server can use sendfile.
//
// The package needs a Unix kernel (flock, hard links, directory fsync).
package fs

import (
	"context"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/mirrord/mirrord/internal/store"
)

// layout computes paths under a store root. Its methods do not validate
// their arguments: callers pass digests from store.ParseDigest and keys
// accepted by store.ValidKey.
type layout string

func (l layout) root() string     { return string(l) }
func (l layout) blobsDir() string { return filepath.Join(l.root(), "blobs", "sha256") }
func (l layout) tmpDir() string   { return filepath.Join(l.root(), "tmp") }
func (l layout) metaDir() string  { return filepath.Join(l.root(), "meta") }
func (l layout) locksDir() string { return filepath.Join(l.root(), "locks") }
func (l layout) fanout(d store.Digest) string {
	return filepath.Join(l.blobsDir(), string(d[:2]))
}

func (l layout) blob(d store.Digest) string { return filepath.Join(l.fanout(d), string(d)) }

func (l layout) meta(key string) string {
	return filepath.Join(l.metaDir(), filepath.FromSlash(key))
}

func (l layout) lock(name string) string {
	return filepath.Join(l.locksDir(), filepath.FromSlash(name)+".lock")
}

// Temp file names: prefix + random + tempSuffix.
const (
	blobTempPrefix = "put-"
	metaTempPrefix = "meta-"
	tempSuffix     = ".tmp"
)

// Store is a store.Store on a local directory.
type Store struct {
	l     layout
	blobs *Blobs
	meta  *Meta
}

var (
	_ store.Store = (*Store)(nil)
	_ store.Filer = (*Blobs)(nil)
)

// Open opens the store rooted at dir, creating the directory layout if
// needed.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	l := layout(abs)
	for _, d := range []string{l.blobsDir(), l.tmpDir(), l.metaDir(), l.locksDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	return &Store{l: l, blobs: &Blobs{l: l}, meta: &Meta{l: l}}, nil
}

// Dir returns the store's absolute root directory.
func (s *Store) Dir() string { return s.l.root() }

// Blobs returns the blob store; its dynamic type is *Blobs.
func (s *Store) Blobs() store.Blobs { return s.blobs }

// Meta returns the metadata store; its dynamic type is *Meta.
func (s *Store) Meta() store.Meta { return s.meta }

// syncDir fsyncs a directory so that renames, links and removals in it are
// durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync dir %s: %w", dir, err)
	}
	return nil
}

// mkdirAllSync is os.MkdirAll that fsyncs the parent of every directory it
// creates. Parents must lie inside an existing store root.
func mkdirAllSync(dir string) error {
	if fi, err := os.Stat(dir); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("mkdir %s: %w", dir, syscall.ENOTDIR)
		}
		return nil
	}
	parent := filepath.Dir(dir)
	if parent == dir {
		return fmt.Errorf("mkdir %s: no existing ancestor", dir)
	}
	if err := mkdirAllSync(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		if errors.Is(err, iofs.ErrExist) {
			return nil
		}
		return err
	}
	return syncDir(parent)
}

// createTemp creates a temp file in tmp/ named so CleanTemp recognises it.
func (l layout) createTemp(prefix string) (*os.File, error) {
	f, err := os.CreateTemp(l.tmpDir(), prefix+"*"+tempSuffix)
	if err != nil {
		return nil, fmt.Errorf("create temp file in %s: %w", l.tmpDir(), err)
	}
	return f, nil
}

// isTempName reports whether name is a temp file this package creates.
func isTempName(name string) bool {
	return strings.HasSuffix(name, tempSuffix) &&
		(strings.HasPrefix(name, blobTempPrefix) || strings.HasPrefix(name, metaTempPrefix))
}

// ctxReader fails reads once ctx is done, so a copy stops between chunks.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
