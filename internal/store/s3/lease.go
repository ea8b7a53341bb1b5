package s3

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mirrord/mirrord/internal/store"
)

// Locks without Consul are leases: the object locks/<name> names its holder
// and an expiry. TryLock creates it with If-None-Match: *; the holder
// renews it every LeaseTTL/3 with If-Match on the ETag it wrote, and
// deletes it (If-Match) on unlock. A lease that has expired, or whose holder
// is a dead process on this host, is taken over with If-Match on the ETag
// read, so of several contenders exactly one wins. A holder that cannot
// renew (the bucket unreachable for a whole TTL, or its lease taken over)
// logs that it lost the lock. Expiry compares the holder's clock with the
// contender's: keep replica clocks within a few seconds (NTP).
//
// This makes the store a single writer per lock name across every process
// sharing the bucket. With consul: configured, Consul locks replace the
// leases (see package store/open).

// lease is the content of a lock object.
type lease struct {
	Owner   string    `json:"owner"` // random per TryLock
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Expires time.Time `json:"expires"`
}

// lockPoll is how often Lock retries TryLock while waiting.
const lockPoll = 250 * time.Millisecond

// Lock implements store.Locker by polling TryLock until ctx ends.
func (s *Store) Lock(ctx context.Context, name string) (func(), error) {
	t := time.NewTicker(lockPoll)
	defer t.Stop()
	for {
		unlock, err := s.TryLock(ctx, name)
		if !errors.Is(err, store.ErrLocked) {
			return unlock, err
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("lock %q: %w", name, ctx.Err())
		case <-t.C:
		}
	}
}

// TryLock implements store.Locker with a lease object.
func (s *Store) TryLock(ctx context.Context, name string) (func(), error) {
	if err := store.ValidKey(name); err != nil {
		return nil, fmt.Errorf("lock: %w", err)
	}
	key := s.l.lock(name)
	host, _ := os.Hostname()
	me := lease{Owner: randomToken(), Host: host, PID: os.Getpid()}
	for attempt := 0; ; attempt++ {
		me.Expires = time.Now().Add(s.opt.LeaseTTL)
		etag, err := s.createObjectETag(ctx, key, me.encode())
		if err == nil {
			return s.hold(key, me, etag), nil
		}
		if !errors.Is(err, store.ErrExists) {
			return nil, s.wrap(fmt.Sprintf("lock %q:", name), key, err)
		}
		cur, curETag, err := s.readLease(ctx, key)
		if store.IsNotExist(err) && attempt < 3 {
			continue // released meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("lock %q: %w", name, err)
		}
		if !cur.stale(host) {
			return nil, fmt.Errorf("lock %q: held by pid %d on %s until %s (lease s3://%s/%s): %w",
				name, cur.PID, cur.Host, cur.Expires.Format(time.RFC3339), s.opt.Bucket, key, store.ErrLocked)
		}
		me.Expires = time.Now().Add(s.opt.LeaseTTL)
		etag, err = s.putObjectETag(ctx, key, me.encode(), aws.String(curETag), nil)
		switch {
		case err == nil:
			s.log.Info("took over a stale lock", "lock", name, "from_host", cur.Host, "from_pid", cur.PID, "expired", cur.Expires)
			return s.hold(key, me, etag), nil
		case isPrecondition(err) || isConflict(err) || isNotFound(err):
			return nil, fmt.Errorf("lock %q: taken over by another process meanwhile: %w", name, store.ErrLocked)
		}
		return nil, s.wrap(fmt.Sprintf("lock %q: take over", name), key, err)
	}
}

func (l lease) encode() []byte {
	b, _ := json.Marshal(l)
	return b
}

// stale reports whether the lease may be taken over: it expired, or its
// holder was a process on this host that no longer runs.
func (l lease) stale(host string) bool {
	if time.Now().After(l.Expires) {
		return true
	}
	if l.Host != host || l.PID <= 0 || l.PID == os.Getpid() {
		return false
	}
	return errors.Is(syscall.Kill(l.PID, 0), syscall.ESRCH)
}

func (s *Store) readLease(ctx context.Context, key string) (lease, string, error) {
	out, err := s.c.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.opt.Bucket, Key: &key})
	if err != nil {
		return lease{}, "", s.wrap("read lease", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return lease{}, "", s.wrap("read lease", key, err)
	}
	var l lease
	if err := json.Unmarshal(b, &l); err != nil {
		// Unreadable: treat as expired so a broken object cannot wedge the lock.
		s.log.Warn("lease object is not valid JSON; treating it as expired", "key", key, "err", err)
	}
	return l, aws.ToString(out.ETag), nil
}

// hold renews the lease until the returned unlock is called.
func (s *Store) hold(key string, me lease, etag string) func() {
	writer := s.opt.WriterLock != "" && key == s.l.lock(s.opt.WriterLock)
	if writer {
		s.NoteWriterLock(true)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex // guards etag
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.renew(ctx, key, me, &mu, &etag)
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			if writer {
				s.NoteWriterLock(false)
			}
			cancel()
			<-done
			mu.Lock()
			defer mu.Unlock()
			dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer dcancel()
			_, err := s.c.DeleteObject(dctx, &s3.DeleteObjectInput{Bucket: &s.opt.Bucket, Key: &key, IfMatch: aws.String(etag)})
			if err != nil && !isNotFound(err) && !isPrecondition(err) {
				s.log.Warn("could not release lease; it expires by itself", "key", key, "expires", me.Expires, "err", err)
			}
		})
	}
}

func (s *Store) renew(ctx context.Context, key string, me lease, mu *sync.Mutex, etag *string) {
	every := s.opt.LeaseTTL / 3
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		mu.Lock()
		next := me
		next.Expires = time.Now().Add(s.opt.LeaseTTL)
		rctx, cancel := context.WithTimeout(ctx, every)
		newTag, err := s.putObjectETag(rctx, key, next.encode(), aws.String(*etag), nil)
		cancel()
		switch {
		case err == nil:
			*etag, me = newTag, next
		case ctx.Err() != nil:
		case isPrecondition(err) || isNotFound(err):
			s.log.Error("lost a lock: its lease was taken over (this process stalled past its expiry)", "key", key)
			mu.Unlock()
			return
		case time.Now().After(me.Expires):
			s.log.Error("lost a lock: could not renew its lease before it expired", "key", key, "err", err)
		default:
			s.log.Warn("renewing a lease failed; retrying", "key", key, "err", err)
		}
		mu.Unlock()
	}
}
