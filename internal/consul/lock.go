package consul

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/mirrord/mirrord/internal/store"
)

// Locks are named exclusive locks in Consul KV (PREFIX/locks/NAME), held
// through a session: they replace the store's own locks when several
// replicas share one bucket. Locks implements store.Locker; safe for
// concurrent use.
//
// A lock's session has a TTL the api renews while it is held; when the
// holder dies, Consul releases the lock once the session expires (about
// twice LockTTL) plus the lock delay. A held lock that Consul takes away
// (session invalidated, Consul unreachable for too long) is logged; the
// holder is not interrupted.
type Locks struct {
	c   *Client
	ttl time.Duration
}

// LockTTL is the session TTL of a lock (Consul's minimum is 10s).
const LockTTL = 10 * time.Second

// Locks returns the client's named locks.
func (c *Client) Locks() *Locks { return &Locks{c: c, ttl: LockTTL} }

var _ store.Locker = (*Locks)(nil)

// LockKey is the KV key of lock name.
func (c *Client) LockKey(name string) string { return c.prefix + "locks/" + name }

// Lock waits for the lock until ctx ends (the error then wraps ctx.Err()).
func (l *Locks) Lock(ctx context.Context, name string) (func(), error) {
	return l.lock(ctx, name, false)
}

// TryLock takes the lock if it is free; the error wraps store.ErrLocked when
// another holder has it.
func (l *Locks) TryLock(ctx context.Context, name string) (func(), error) {
	return l.lock(ctx, name, true)
}

func (l *Locks) lock(ctx context.Context, name string, try bool) (func(), error) {
	if err := store.ValidKey(name); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	key := l.c.LockKey(name)
	host, _ := os.Hostname()
	lk, err := l.c.api.LockOpts(&api.LockOptions{
		Key: key, Value: []byte(fmt.Sprintf("pid %d on %s", os.Getpid(), host)),
		SessionName: "mirrord lock " + name, SessionTTL: l.ttl.String(),
		LockTryOnce: try, LockWaitTime: 100 * time.Millisecond,
	})
	if err != nil {
		return nil, fmt.Errorf("lock %q: %w", name, err)
	}
	stop := make(chan struct{})
	acquired := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			close(stop)
		case <-acquired:
		}
	}()
	lost, err := lk.Lock(stop)
	close(acquired)
	switch {
	case err != nil:
		return nil, fmt.Errorf("lock %q: %w", name, l.c.wrap(err, "acquiring "+key))
	case lost == nil && ctx.Err() != nil:
		return nil, fmt.Errorf("lock %q: %w", name, ctx.Err())
	case lost == nil:
		return nil, fmt.Errorf("lock %q: held by another replica (Consul key %s): %w", name, key, store.ErrLocked)
	}
	released := make(chan struct{})
	go func() {
		select {
		case <-lost:
			select {
			case <-released:
			default:
				l.c.log.Error("lost a Consul lock while holding it", "lock", name, "key", key)
			}
		case <-released:
		}
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			close(released)
			if err := lk.Unlock(); err != nil && err != api.ErrLockNotHeld {
				l.c.log.Warn("releasing a Consul lock failed; it expires with its session", "key", key, "err", err)
			}
		})
	}, nil
}
