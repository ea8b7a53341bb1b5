package s3

import (
	"bytes"
	"context"
	"io"
	"sync"
	"time"

	"github.com/mirrord/mirrord/internal/ctxtime"
	"github.com/mirrord/mirrord/internal/store"
)

// Small blobs are written behind: Put verifies the whole blob in memory,
// queues it and returns; up to uploadConcurrency uploads run at once. Until
// its upload ends, a queued blob is served from memory to this process
// (Stat, Open), so Put's visibility holds here; other processes see it once
// it is in the bucket. Sync (store.Syncer) waits for every queued upload
// and reports the first failure: snapshot.Catalog.Commit calls it before
// writing a record, so no record names a blob that is not in the bucket.
// List and Delete wait for queued uploads first. A crash loses queued
// uploads, exactly as it loses a sync's unsynced blobs on fs: no record
// referenced them.
type behind struct {
	mu      sync.Mutex
	room    *sync.Cond
	queued  map[store.Digest]*queuedBlob
	bytes   int64
	max     int64
	running sync.WaitGroup
	err     error // first upload failure since the last Sync
	sem     chan struct{}
}

type queuedBlob struct {
	info store.Info
	data []byte
}

const (
	behindAttempts    = 3 // uploads of a queued blob before its failure is Sync's error
	uploadConcurrency = 32
	behindMax         = 256 << 20 // bytes queued at most
)

func newBehind() *behind {
	b := &behind{queued: map[store.Digest]*queuedBlob{}, max: behindMax, sem: make(chan struct{}, uploadConcurrency)}
	b.room = sync.NewCond(&b.mu)
	return b
}

// enqueue queues data for upload by put, waiting for room.
func (q *behind) enqueue(ctx context.Context, info store.Info, data []byte, put func(context.Context, store.Info, []byte) error) error {
	n := int64(len(data))
	q.mu.Lock()
	for q.bytes > 0 && q.bytes+n > q.max {
		if err := ctx.Err(); err != nil {
			q.mu.Unlock()
			return err
		}
		q.room.Wait()
	}
	if _, dup := q.queued[info.Digest]; dup {
		q.mu.Unlock()
		return nil
	}
	qb := &queuedBlob{info: info, data: bytes.Clone(data)}
	q.queued[info.Digest] = qb
	q.bytes += n
	q.running.Add(1)
	q.mu.Unlock()
	go func() {
		defer q.running.Done()
		q.sem <- struct{}{}
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		// The SDK retries each request; a write-behind upload that still
		// fails (a server overloaded for a few seconds) is tried again
		// before it becomes Sync's error: the caller's Put has returned.
		var err error
		for attempt, wait := 0, time.Second; attempt < behindAttempts; attempt, wait = attempt+1, wait*2 {
			if err = put(uctx, info, qb.data); err == nil || uctx.Err() != nil || attempt == behindAttempts-1 {
				break
			}
			if ctxtime.Sleep(uctx, wait) != nil {
				break
			}
		}
		cancel()
		<-q.sem
		q.mu.Lock()
		delete(q.queued, info.Digest)
		q.bytes -= n
		if err != nil && q.err == nil {
			q.err = err
		}
		q.room.Broadcast()
		q.mu.Unlock()
	}()
	return nil
}

func (q *behind) get(d store.Digest) (*queuedBlob, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qb, ok := q.queued[d]
	return qb, ok
}

// failed is the first upload failure since the last Sync (nil: none);
// List reports it rather than listing as if the blob had never been put.
func (q *behind) failed() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.err
}

// wait waits until every upload queued so far has ended, or ctx ends.
func (q *behind) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { q.running.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		// Wake enqueue waiters so they see their ctx.
		q.mu.Lock()
		q.room.Broadcast()
		q.mu.Unlock()
		return ctx.Err()
	}
}

// Sync implements store.Syncer: every Put that returned is in the bucket,
// or the error says which upload failed.
func (b *Blobs) Sync(ctx context.Context) error {
	if err := b.q.wait(ctx); err != nil {
		return err
	}
	b.q.mu.Lock()
	defer b.q.mu.Unlock()
	err := b.q.err
	b.q.err = nil
	return err
}

// memBlob is a queued blob read from memory.
type memBlob struct {
	*bytes.Reader
	size int64
}

func (m *memBlob) Size() int64  { return m.size }
func (m *memBlob) Close() error { return nil }

var _ io.ReadSeekCloser = (*memBlob)(nil)
