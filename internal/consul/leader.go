package consul

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/mirrord/mirrord/internal/ctxtime"
)

// LeaderOptions configures the scheduled-sync lock.
type LeaderOptions struct {
	// ID names this replica; it is the lock key's value while held.
	ID string
	// ServiceCheck, when set ("service:<service ID>"), binds the lock's
	// session to this replica's health check: when the check goes
	// critical (the process died) the lock is released at once instead
	// of after the session TTL.
	ServiceCheck string
	// TTL of the session (default and minimum 10s): a holder that stops
	// renewing loses the lock within about twice that.
	TTL time.Duration
	// LockDelay keeps the lock free for this long after its session is
	// invalidated, so a holder cut off from Consul stops first (default 1s).
	LockDelay time.Duration
	// Retry is the wait between attempts after a failure (default 1s).
	Retry time.Duration
}

func (o *LeaderOptions) defaults() {
	o.TTL = max(o.TTL, 10*time.Second)
	if o.LockDelay <= 0 {
		o.LockDelay = time.Second
	}
	if o.Retry <= 0 {
		o.Retry = time.Second
	}
}

// errLost ends a term: the lock is no longer ours.
var errLost = errors.New("leader lock lost")

// Lead runs fn each time this replica wins PREFIX/leader, until ctx ends.
// fn's context is cancelled as soon as the lock is lost (session
// invalidated, key taken, Consul unreachable), and Lead waits for fn to
// return before it competes again. At most one replica runs fn at a time,
// as far as Consul's sessions guarantee it.
func (c *Client) Lead(ctx context.Context, opt LeaderOptions, fn func(ctx context.Context)) {
	opt.defaults()
	quiet := false        // log a failing attempt once, not every second
	var leftover []string // sessions not destroyed (Consul was down)
	for ctx.Err() == nil {
		leftover = slices.DeleteFunc(leftover, func(sid string) bool { return c.destroySession(sid) == nil })
		err := c.term(ctx, opt, fn, func(sid string) { leftover = append(leftover, sid) })
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, errLost):
			c.log.Warn("stopped leading scheduled syncs", "id", opt.ID, "reason", err)
			quiet = false
		case err != nil && !quiet:
			c.log.Warn("cannot compete for the scheduled-sync lock yet; retrying", "key", c.LeaderKey(), "err", err)
			quiet = true
		}
		ctxtime.Sleep(ctx, opt.Retry)
	}
}

// term is one session: create it, win the lock, run fn until the lock is
// lost, release. A session it could not destroy goes to leftover, so the
// next term removes it rather than leave the lock held until its TTL.
func (c *Client) term(ctx context.Context, opt LeaderOptions, fn func(ctx context.Context), leftover func(sid string)) error {
	sid, err := c.createSession(ctx, opt)
	if err != nil {
		return err
	}
	defer func() {
		if c.destroySession(sid) != nil {
			leftover(sid)
		}
	}()
	sctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() { cancel(c.renew(sctx, sid, opt.TTL)) }()
	if err := c.acquire(sctx, sid, opt.ID); err != nil {
		if cause := context.Cause(sctx); cause != nil && ctx.Err() == nil {
			return cause
		}
		return err
	}
	c.log.Info("leading scheduled syncs", "id", opt.ID, "key", c.LeaderKey())
	lctx, lcancel := context.WithCancel(sctx)
	done := make(chan struct{})
	go func() { defer close(done); fn(lctx) }()
	err = c.hold(lctx, sid)
	lcancel()
	<-done
	c.release(sid, opt.ID)
	if cause := context.Cause(sctx); cause != nil && ctx.Err() == nil && !errors.Is(cause, context.Canceled) {
		err = cause
	}
	return err
}

func (c *Client) createSession(ctx context.Context, opt LeaderOptions) (string, error) {
	se := &api.SessionEntry{
		Name: "mirrord scheduled syncs: " + opt.ID, TTL: opt.TTL.String(), LockDelay: opt.LockDelay,
		Behavior: api.SessionBehaviorRelease, NodeChecks: []string{"serfHealth"},
	}
	if opt.ServiceCheck != "" {
		se.ServiceChecks = []api.ServiceCheck{{ID: opt.ServiceCheck}}
	}
	id, err := call(ctx, func(ctx context.Context) (string, error) {
		id, _, err := c.api.Session().Create(se, write(ctx))
		return id, err
	})
	if err != nil {
		return "", c.wrap(err, "creating a session for the scheduled-sync lock")
	}
	return id, nil
}

func (c *Client) destroySession(sid string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := c.api.Session().Destroy(sid, write(ctx))
	return err
}

// renew keeps the session alive; it returns errLost once the session is
// gone or could not be renewed for a whole TTL.
func (c *Client) renew(ctx context.Context, sid string, ttl time.Duration) error {
	lastOK := time.Now()
	wait := ttl / 2
	for {
		if err := ctxtime.Sleep(ctx, wait); err != nil {
			return nil
		}
		se, err := call(ctx, func(ctx context.Context) (*api.SessionEntry, error) {
			se, _, err := c.api.Session().Renew(sid, write(ctx))
			return se, err
		})
		switch {
		case ctx.Err() != nil:
			return nil
		case err == nil && se == nil:
			return fmt.Errorf("%w: session %s was invalidated", errLost, sid)
		case err == nil:
			lastOK, wait = time.Now(), ttl/2
		case time.Since(lastOK) > ttl:
			return fmt.Errorf("%w: session not renewed for %s: %w", errLost, ttl, c.wrap(err, "renewing session"))
		default:
			wait = time.Second
		}
	}
}

// acquire blocks until the session holds the lock key.
func (c *Client) acquire(ctx context.Context, sid, value string) error {
	var idx uint64
	for {
		pair, last, err := c.getBlocking(ctx, c.LeaderKey(), idx, false)
		if err != nil {
			return err
		}
		if pair != nil && pair.Session == sid {
			return nil
		}
		if pair != nil && pair.Session != "" {
			idx = last
			continue
		}
		ok, err := call(ctx, func(ctx context.Context) (bool, error) {
			ok, _, err := c.api.KV().Acquire(c.lockPair(sid, value), write(ctx))
			return ok, err
		})
		if err != nil {
			return c.wrap(err, "acquiring "+c.LeaderKey())
		}
		if ok {
			return nil
		}
		// Lock-delay after an invalidated session, or another replica won.
		if err := ctxtime.Sleep(ctx, 250*time.Millisecond); err != nil {
			return err
		}
		idx = 0
	}
}

// hold returns errLost as soon as the lock key stops naming the session, or
// Consul stops answering; nil when ctx ends.
func (c *Client) hold(ctx context.Context, sid string) error {
	var idx uint64
	fails := 0
	for {
		pair, last, err := c.getBlocking(ctx, c.LeaderKey(), idx, true)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if fails++; fails > 2 {
				return fmt.Errorf("%w: %w", errLost, err)
			}
			ctxtime.Sleep(ctx, 300*time.Millisecond)
			idx = 0
			continue
		case pair == nil || pair.Session != sid:
			return fmt.Errorf("%w: %s was released or taken over", errLost, c.LeaderKey())
		}
		fails, idx = 0, last
	}
}

func (c *Client) release(sid, value string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c.api.KV().Release(c.lockPair(sid, value), write(ctx))
}

func (c *Client) lockPair(sid, value string) *api.KVPair {
	return &api.KVPair{Key: c.LeaderKey(), Value: []byte(value), Session: sid, Flags: api.LockFlagValue}
}

// leaderWait is how long one blocking read of the lock key waits.
const leaderWait = 30 * time.Second

func (c *Client) getBlocking(ctx context.Context, key string, idx uint64, consistent bool) (*api.KVPair, uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout+leaderWait+leaderWait/16)
	defer cancel()
	q := &api.QueryOptions{WaitIndex: idx, WaitTime: leaderWait, RequireConsistent: consistent}
	pair, meta, err := c.api.KV().Get(key, q.WithContext(ctx))
	if err != nil {
		return nil, 0, c.wrap(err, "reading "+key)
	}
	last := meta.LastIndex
	if last < idx {
		last = 0
	}
	return pair, last, nil
}

// Holder returns the value of the lock key (the leader's ID) and whether a
// session holds it now.
func (c *Client) Holder(ctx context.Context) (string, bool, error) {
	pair, err := call(ctx, func(ctx context.Context) (*api.KVPair, error) {
		p, _, err := c.api.KV().Get(c.LeaderKey(), query(ctx))
		return p, err
	})
	if err != nil {
		return "", false, c.wrap(err, "reading "+c.LeaderKey())
	}
	if pair == nil {
		return "", false, nil
	}
	return string(pair.Value), pair.Session != "", nil
}
