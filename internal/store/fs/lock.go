package fs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/mirrord/mirrord/internal/store"
)

// lockPoll is how often Lock retries TryLock while waiting.
const lockPoll = 50 * time.Millisecond

// Lock implements store.Locker: it polls TryLock until it succeeds or ctx
// is done (the error then wraps ctx.Err()).
func (s *Store) Lock(ctx context.Context, name string) (func(), error) {
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("lock %q: %w", name, err)
		}
		unlock, err := s.TryLock(ctx, name)
		if !errors.Is(err, store.ErrLocked) {
			return unlock, err
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// TryLock implements store.Locker with a non-blocking flock(2) on
// locks/<name>.lock. name must be a valid Meta key. The returned unlock is
// idempotent.
func (s *Store) TryLock(ctx context.Context, name string) (func(), error) {
	if err := store.ValidKey(name); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	path := s.l.lock(name)
	if err := mkdirAllSync(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("lock %q: %w", name, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %q: %w", name, err)
	}
	if err := flock(f); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("lock %q: %w", name, store.ErrLocked)
		}
		return nil, fmt.Errorf("lock %q: flock %s: %w", name, path, err)
	}
	var once sync.Once
	// Closing the file releases the flock; the closure keeps f reachable
	// so no finalizer can close it early.
	return func() { once.Do(func() { f.Close() }) }, nil
}

// flock takes an exclusive, non-blocking flock on f, retrying on EINTR.
func flock(f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	err = raw.Control(func(fd uintptr) {
		for {
			ferr = syscall.Flock(int(fd), syscall.LOCK_EX|syscall.LOCK_NB)
			if ferr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return ferr
}
