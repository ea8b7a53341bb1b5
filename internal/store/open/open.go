// Package open builds the configured store (store.kind) in one place: the
// fs store under data_dir, or the s3 store with its local read cache and
// its locks (Consul locks when consul: is configured, lease objects in the
// bucket otherwise).
package open

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/fs"
	"github.com/mirrord/mirrord/internal/store/readcache"
	"github.com/mirrord/mirrord/internal/store/s3"
)

// Options says what to open.
type Options struct {
	Store   config.Store
	Cache   config.Cache
	DataDir string
	// Locker replaces the s3 store's lease locks (Consul locks); nil keeps
	// them. Ignored by the fs store, whose flock locks are local anyway.
	Locker store.Locker
	Logger *slog.Logger
}

// Opened is the store with what the server needs besides it.
type Opened struct {
	store.Store
	// Presign, with store.redirect, returns a time-limited URL a client
	// can GET blob d from directly; nil otherwise.
	Presign func(ctx context.Context, d store.Digest) (string, error)
	// Describe names the store for logs and errors.
	Describe string
}

// PresignTTL is how long a redirect's presigned URL stays valid.
const PresignTTL = 15 * time.Minute

// Open opens the store opt describes.
func Open(ctx context.Context, opt Options) (*Opened, error) {
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch opt.Store.Kind {
	case "", config.StoreFS:
		st, err := fs.Open(opt.DataDir)
		if err != nil {
			return nil, fmt.Errorf("opening store %s: %w", opt.DataDir, err)
		}
		return &Opened{Store: st, Describe: "fs " + st.Dir()}, nil
	case config.StoreS3:
		return openS3(ctx, opt, log)
	}
	return nil, fmt.Errorf("unknown store kind %q", opt.Store.Kind)
}

func openS3(ctx context.Context, opt Options, log *slog.Logger) (*Opened, error) {
	c := opt.Store
	secret, err := c.SecretAccessKey()
	if err != nil {
		return nil, err
	}
	st, err := s3.New(ctx, s3.Options{
		Endpoint: c.Endpoint, Region: c.Region, Bucket: c.Bucket, Prefix: c.Prefix, PathStyle: c.PathStyle,
		AccessKeyID: c.AccessKeyID, SecretAccessKey: secret,
		TempDir: filepath.Join(opt.DataDir, "tmp", "s3"), Logger: log, WriterLock: snapshot.SyncLock,
	})
	if err != nil {
		return nil, err
	}
	cache, err := readcache.New(st.Blobs(), filepath.Join(opt.DataDir, "cache", "blobs"), int64(opt.Cache.MaxSize), log)
	if err != nil {
		return nil, err
	}
	var locker store.Locker = st
	if opt.Locker != nil {
		locker = &writerNoting{Locker: opt.Locker, st: st}
	}
	if opt.Locker == nil {
		log.Info("store: S3 without consul: a single writer per lock, guarded by lease objects in the bucket (locks/); configure consul: to use Consul locks",
			"store", st.String())
	} else {
		log.Info("store: S3 with Consul locks", "store", st.String())
	}
	o := &Opened{Store: &composite{blobs: cache, meta: st.Meta(), Locker: locker}, Describe: st.String()}
	if c.Redirect {
		o.Presign = func(ctx context.Context, d store.Digest) (string, error) {
			return st.PresignGet(ctx, d, PresignTTL)
		}
	}
	return o, nil
}

// writerNoting tells the s3 store when this process holds the sync lock
// through another locker (Consul), as its own leases do.
type writerNoting struct {
	store.Locker
	st *s3.Store
}

func (w *writerNoting) Lock(ctx context.Context, name string) (func(), error) {
	unlock, err := w.Locker.Lock(ctx, name)
	return w.note(name, unlock, err)
}

func (w *writerNoting) TryLock(ctx context.Context, name string) (func(), error) {
	unlock, err := w.Locker.TryLock(ctx, name)
	return w.note(name, unlock, err)
}

func (w *writerNoting) note(name string, unlock func(), err error) (func(), error) {
	if err != nil || name != snapshot.SyncLock {
		return unlock, err
	}
	w.st.NoteWriterLock(true)
	var once sync.Once
	return func() {
		once.Do(func() {
			w.st.NoteWriterLock(false)
			unlock()
		})
	}, nil
}

// composite is a store.Store from parts.
type composite struct {
	blobs store.Blobs
	meta  store.Meta
	store.Locker
}

func (c *composite) Blobs() store.Blobs { return c.blobs }
func (c *composite) Meta() store.Meta   { return c.meta }
