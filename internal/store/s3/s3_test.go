package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/s3/s3test"
	"github.com/mirrord/mirrord/internal/store/storetest"
)

var buckets atomic.Int64

// testOptions are small part sizes so that every upload path (in memory,
// streamed, multipart from memory, spooled multipart) is exercised by
// blobs of a few MiB.
func testOptions(t *testing.T, endpoint, bucket string) Options {
	return Options{
		Endpoint: endpoint, Bucket: bucket, Prefix: "mirrord/", PathStyle: true, Region: "us-east-1",
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey,
		TempDir: t.TempDir(), PartSize: 5 << 20, MultipartThreshold: 8 << 20, LeaseTTL: 3 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

func newStore(t *testing.T, opt Options) *Store {
	t.Helper()
	s, err := New(t.Context(), opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	srv := s3test.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		b := srv.Bucket(fmt.Sprintf("bucket-%d", buckets.Add(1)))
		return newStore(t, testOptions(t, srv.Endpoint(), b))
	})
}

// TestConformanceThrough503s runs the suite through a proxy that answers
// one request in five with 503 SlowDown: the store retries them all.
func TestConformanceThrough503s(t *testing.T) {
	srv := s3test.Start(t)
	f := s3test.NewFaulty(t, srv, 5)
	storetest.Run(t, func(t *testing.T) store.Store {
		b := srv.Bucket(fmt.Sprintf("faulty-%d", buckets.Add(1)))
		opt := testOptions(t, f.URL, b)
		opt.MultipartThreshold = opt.PartSize // no single-request streams: those cannot be replayed
		opt.MaxAttempts = 10
		opt.MaxBackoff = 50 * time.Millisecond
		return newStore(t, opt)
	}, "ListPast1000") // 2,100 more requests prove nothing TestConformance does not
	if f.Injected.Load() == 0 {
		t.Errorf("the proxy injected no 503s")
	}
	t.Logf("%d requests answered 503 and retried", f.Injected.Load())
}

// TestStreamedPutVerified checks the single-request stream of a blob with
// a known digest and size: wrong content never becomes visible, whether the
// last byte, a middle byte or the length differs.
func TestStreamedPutVerified(t *testing.T) {
	srv := s3test.Start(t)
	s := newStore(t, testOptions(t, srv.Endpoint(), srv.Bucket("stream")))
	data := bytes.Repeat([]byte("0123456789abcdef"), 6<<20/16) // 6 MiB: streamed
	d := store.DigestOf(data)
	for name, body := range map[string][]byte{
		"last byte":   append(bytes.Clone(data[:len(data)-1]), 'X'),
		"middle byte": append(append(bytes.Clone(data[:3<<20]), 'X'), data[3<<20+1:]...),
	} {
		_, err := s.Blobs().Put(t.Context(), bytes.NewReader(body), store.Expect{Digest: d, Size: int64(len(data))})
		if !errors.Is(err, store.ErrDigestMismatch) {
			t.Errorf("%s: err = %v, want ErrDigestMismatch", name, err)
		}
		if _, err := s.Blobs().Stat(t.Context(), d); !store.IsNotExist(err) {
			t.Fatalf("%s: blob visible after a failed Put: %v", name, err)
		}
	}
	for _, n := range []int{len(data) - 1, len(data) + 1} {
		body := append(bytes.Clone(data), 'x')[:n]
		_, err := s.Blobs().Put(t.Context(), bytes.NewReader(body), store.Expect{Digest: d, Size: int64(len(data))})
		if !errors.Is(err, store.ErrSizeMismatch) {
			t.Errorf("%d bytes for %d: err = %v, want ErrSizeMismatch", n, len(data), err)
		}
	}
	if _, err := s.Blobs().Put(t.Context(), bytes.NewReader(data), store.Expect{Digest: d, Size: int64(len(data))}); err != nil {
		t.Fatal(err)
	}
	b, err := s.Blobs().Open(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Size() != int64(len(data)) {
		t.Errorf("Size = %d", b.Size())
	}
}

// TestLeaseTakeover: a lease whose holder stopped renewing is taken over
// after it expires; one whose holder is alive is not.
func TestLeaseTakeover(t *testing.T) {
	srv := s3test.Start(t)
	opt := testOptions(t, srv.Endpoint(), srv.Bucket("lease"))
	a, b := newStore(t, opt), newStore(t, opt)
	unlock, err := a.TryLock(t.Context(), "sync")
	if err != nil {
		t.Fatal(err)
	}
	first, _, err := a.readLease(t.Context(), a.l.lock("sync"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(opt.LeaseTTL/3 + opt.LeaseTTL/4)
	renewed, _, err := a.readLease(t.Context(), a.l.lock("sync"))
	if err != nil || !renewed.Expires.After(first.Expires) || renewed.Owner != first.Owner {
		t.Errorf("lease not renewed: %+v then %+v (%v)", first, renewed, err)
	}
	if _, err := b.TryLock(t.Context(), "sync"); !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), "held by pid") {
		t.Fatalf("TryLock of a renewed lease: err = %v, want ErrLocked naming the holder", err)
	}
	// A lease left by a holder that stopped renewing (a crashed process
	// on another host): expired, so it is taken over.
	key := a.l.lock("gc")
	stale := lease{Owner: "x", Host: "elsewhere", PID: 1, Expires: time.Now().Add(-time.Second)}
	if err := a.putObject(t.Context(), key, stale.encode(), nil, nil); err != nil {
		t.Fatal(err)
	}
	u2, err := b.TryLock(t.Context(), "gc")
	if err != nil {
		t.Fatalf("TryLock of an expired lease: %v", err)
	}
	u2()
	unlock()
	u3, err := b.TryLock(t.Context(), "sync")
	if err != nil {
		t.Fatalf("TryLock after unlock: %v", err)
	}
	u3()
}

func TestUnreachable(t *testing.T) {
	srv := s3test.Start(t)
	opt := testOptions(t, srv.Endpoint(), srv.Bucket("down-bucket"))
	opt.MaxAttempts = 2
	s := newStore(t, opt)
	srv.Stop()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err := s.Blobs().Stat(ctx, store.DigestOf(nil))
	if !errors.Is(err, store.ErrUnavailable) || !strings.Contains(err.Error(), "s3://down-bucket/") || !strings.Contains(err.Error(), srv.Endpoint()) {
		t.Errorf("Stat with the server down: err = %v; want an error naming the bucket and endpoint", err)
	}
	srv.Start()
	if _, err := s.Blobs().Stat(t.Context(), store.DigestOf(nil)); !store.IsNotExist(err) {
		t.Errorf("Stat after the server is back: err = %v, want ErrNotFound", err)
	}
}

func TestLayout(t *testing.T) {
	l := layout("p/")
	d := store.DigestOf([]byte("hello"))
	if got := l.blob(d); got != "p/blobs/sha256/2c/"+string(d) {
		t.Errorf("blob key = %q", got)
	}
	if got, ok := l.digestOf(l.blob(d)); !ok || got != d {
		t.Errorf("digestOf(blob key) = %q, %v", got, ok)
	}
	for _, k := range []string{"p/blobs/sha256/00/" + string(d), "p/blobs/sha256/2c/x", "q/blobs/sha256/2c/" + string(d), "p/blobs/sha256/2c/" + string(d) + "/"} {
		if _, ok := l.digestOf(k); ok {
			t.Errorf("digestOf(%q) accepted", k)
		}
	}
	if got := l.meta("snapshots/x"); got != "p/meta/snapshots/x" {
		t.Errorf("meta key = %q", got)
	}
	if got := l.lock("sync"); got != "p/locks/sync" {
		t.Errorf("lock key = %q", got)
	}
}

// TestPresenceFilter: under the writer lock, Recover lists the bucket once
// and Stat answers misses without a request; present blobs, blobs put
// meanwhile and everything after unlock are asked of the server.
func TestPresenceFilter(t *testing.T) {
	srv := s3test.Start(t)
	f := s3test.NewFaulty(t, srv, 0) // counts requests, fails none
	opt := testOptions(t, f.URL, srv.Bucket("presence"))
	opt.WriterLock = "sync"
	s := newStore(t, opt)
	blobs := s.Blobs().(*Blobs)
	ctx := t.Context()
	old, err := s.Blobs().Put(ctx, strings.NewReader("listed before"), store.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	if err := blobs.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	unlock, err := s.TryLock(ctx, "sync")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blobs.Recover(ctx); err != nil {
		t.Fatal(err)
	}
	before := f.Requests()
	for i := range 50 {
		if _, err := s.Blobs().Stat(ctx, store.DigestOf([]byte(fmt.Sprint("absent ", i)))); !store.IsNotExist(err) {
			t.Fatalf("Stat(absent) = %v", err)
		}
	}
	if n := f.Requests() - before; n > 2 {
		t.Errorf("50 Stats of absent blobs under the writer lock made %d requests", n)
	}
	if info, err := s.Blobs().Stat(ctx, old.Digest); err != nil || info.Size != old.Size {
		t.Errorf("Stat(listed) = %+v, %v", info, err)
	}
	added, err := s.Blobs().Put(ctx, bytes.NewReader([]byte("put under the lock")), store.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	if err := blobs.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Blobs().Stat(ctx, added.Digest); err != nil {
		t.Errorf("Stat of a blob put under the lock: %v", err)
	}
	unlock()
	// Another process may write now: misses are asked of the server again.
	other := newStore(t, opt)
	late, err := other.Blobs().Put(ctx, strings.NewReader("written by another process"), store.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	other.Blobs().(*Blobs).Sync(ctx)
	if _, err := s.Blobs().Stat(ctx, late.Digest); err != nil {
		t.Errorf("Stat after unlock of a blob another process wrote: %v", err)
	}
}
