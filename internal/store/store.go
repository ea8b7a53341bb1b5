// Package store defines mirrord's content-addressed blob store and its small
// mutable metadata store. Implementations (fs, s3, ...) live in subpackages and
// must pass the conformance suite in store/storetest.
//
// Invariants every implementation keeps:
//   - a blob becomes visible under its digest only after its content has been
//     fully written and verified; readers never see a partial blob;
//   - blobs are never modified once visible; Delete is the only way they change;
//   - metadata values are replaced atomically (readers see the old or the new
//     value, never a mix).
package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Digest is the lowercase hex sha256 of a blob's content.
type Digest string

// ParseDigest checks that s is 64 lowercase hex characters.
func ParseDigest(s string) (Digest, error) {
	if len(s) != sha256.Size*2 {
		return "", fmt.Errorf("digest %q: want %d hex characters, got %d", s, sha256.Size*2, len(s))
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return "", fmt.Errorf("digest %q: not lowercase hex", s)
		}
	}
	return Digest(s), nil
}

// DigestOf returns the digest of b.
func DigestOf(b []byte) Digest {
	s := sha256.Sum256(b)
	return Digest(hex.EncodeToString(s[:]))
}

// Expect describes what a Put must produce. Zero fields mean unknown: Size 0
// is "unknown size" (a known-empty blob is still caught by its Digest).
type Expect struct {
	Digest  Digest
	Size    int64
	MaxSize int64 // cap on bytes read; 0 means DefaultMaxSize
}

// DefaultMaxSize caps a single blob when the caller gives no limit.
const DefaultMaxSize = 64 << 30

// Info describes a stored blob.
type Info struct {
	Digest  Digest
	Size    int64
	ModTime time.Time // when it was written (or last re-put); used by gc's grace period
}

// Blob is an open blob. It is an io.ReadSeeker so it can be served with Range.
type Blob interface {
	io.ReadSeekCloser
	Size() int64
}

// Blobs is the content-addressed store. All methods are safe for concurrent
// use, also by several processes sharing one backing store.
type Blobs interface {
	// Put streams r into the store while hashing it. The blob becomes
	// visible only when the stream ends and matches exp; otherwise
	// nothing is left behind and the error wraps ErrDigestMismatch,
	// ErrSizeMismatch or ErrTooLarge. Putting a blob that exists already
	// succeeds (and refreshes its ModTime where the backend can).
	Put(ctx context.Context, r io.Reader, exp Expect) (Info, error)
	// Open returns the blob; the error wraps ErrNotFound when absent.
	Open(ctx context.Context, d Digest) (Blob, error)
	// Stat returns the blob's info; the error wraps ErrNotFound when absent.
	Stat(ctx context.Context, d Digest) (Info, error)
	// List calls fn for every blob, in no particular order, until fn
	// returns an error (which List returns).
	List(ctx context.Context, fn func(Info) error) error
	// Delete removes the blob; deleting an absent blob is not an error.
	Delete(ctx context.Context, d Digest) error
	// CleanTemp removes the leftovers of interrupted writes that are older
	// than age and reports how many it removed.
	CleanTemp(ctx context.Context, age time.Duration) (int, error)
}

// Meta holds mirrord's small mutable records (snapshot records, channels).
// Keys are slash-separated paths of [A-Za-z0-9._-] segments.
type Meta interface {
	// Get returns the value; the error wraps ErrNotFound when absent.
	Get(ctx context.Context, key string) ([]byte, error)
	// Put replaces the value atomically.
	Put(ctx context.Context, key string, value []byte) error
	// Create writes the value only if key is absent; otherwise the error
	// wraps ErrExists.
	Create(ctx context.Context, key string, value []byte) error
	// List returns the keys directly under prefix (a "directory"), sorted.
	List(ctx context.Context, prefix string) ([]string, error)
	// Delete removes key; deleting an absent key is not an error.
	Delete(ctx context.Context, key string) error
}

// Locker is an optional capability: an exclusive, cross-process lock by name
// (held until the returned func is called, or the process dies).
type Locker interface {
	Lock(ctx context.Context, name string) (unlock func(), err error)
	// TryLock is Lock without waiting: ErrLocked when another holder has it.
	TryLock(ctx context.Context, name string) (unlock func(), err error)
}

// Filer is an optional capability of Blobs: the local file holding a blob,
// so the server can use sendfile.
type Filer interface {
	BlobPath(d Digest) string
}

// Syncer is an optional capability of Blobs that batch durability: Sync
// makes every Put that has returned durable. snapshot.Catalog.Commit calls
// it before writing a record, so no record is durable before its blobs.
type Syncer interface {
	Sync(ctx context.Context) error
}

// Recoverer is an optional capability of Blobs that batch durability:
// Recover finds blobs a crashed process wrote but never synced, and deletes
// any whose content no longer matches its digest. Syncs call it first,
// under the sync lock.
type Recoverer interface {
	Recover(ctx context.Context) (removed int, err error)
}

// Versioner is an optional capability of Meta: Version returns a value that
// changes after every completed Put, Create or Delete, made by this or any
// other process sharing the store. It is cheap (a local read, no network),
// so a server calls it per request and reloads its view only when the value
// moved; that is what makes a CLI promotion served on the very next
// request. Backends without it are followed by polling (and Consul).
type Versioner interface {
	Version() (uint64, error)
}

// Store bundles what mirrord needs from a backend.
type Store interface {
	Blobs() Blobs
	Meta() Meta
	Locker
}

var (
	ErrNotFound       = errors.New("not found")
	ErrExists         = errors.New("already exists")
	ErrDigestMismatch = errors.New("sha256 mismatch")
	ErrSizeMismatch   = errors.New("size mismatch")
	ErrTooLarge       = errors.New("too large")
	ErrLocked         = errors.New("locked by another process")
	// ErrUnavailable is wrapped by errors that mean the backing store
	// could not be reached or could not answer (network, 5xx after
	// retries): retrying later may succeed.
	ErrUnavailable = errors.New("store unavailable")
)

// IsNotExist reports whether err says a blob or key is absent.
func IsNotExist(err error) bool { return errors.Is(err, ErrNotFound) }

// ValidKey reports whether key is a well-formed Meta key.
func ValidKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") {
		return fmt.Errorf("meta key %q: must be non-empty, relative, without trailing slash", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." || strings.HasPrefix(seg, ".") {
			return fmt.Errorf("meta key %q: bad segment %q", key, seg)
		}
		for _, c := range seg {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("meta key %q: bad character %q", key, c)
			}
		}
	}
	return nil
}
