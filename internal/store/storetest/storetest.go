// Package storetest is the conformance suite for store.Store backends.
//
// A backend's test calls Run with a constructor returning a fresh, empty
// store; every subtest gets its own store. The suite checks the contracts
// documented in package store, including:
//   - Put verifies digest, size and size cap, and on any failure (bad
//     content, reader error, cancelled context) leaves nothing visible:
//     neither via Stat nor List, nor as a temp file (CleanTemp(0) finds
//     nothing);
//   - Put's error wraps the reader's error or ctx.Err() when those caused it;
//   - Put stops reading soon after the size cap is passed;
//   - concurrent Puts of the same content all succeed and yield one blob;
//   - open blobs support Seek and partial reads;
//   - invalid digests and Meta keys are rejected with an error;
//   - Meta.Create is exclusive under concurrency and Meta.Put is atomic;
//   - List of Meta omits prefixes whose keys were all deleted;
//   - Locker excludes a second holder, and Lock waits honouring ctx;
//   - listings are complete past 1000 entries (S3 pages at 1000), and a
//     blob larger than any multipart part size reads back whole and by
//     ranges.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/mirrord/mirrord/internal/store"
)

// Run runs the conformance suite. newStore must return a new, empty store
// each time it is called; it may register cleanups on t. skip names
// subtests to leave out (a second run of the suite over a variant of a
// backend already covered, where the slow ones add nothing).
func Run(t *testing.T, newStore func(t *testing.T) store.Store, skip ...string) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"PutOpenStat", testPutOpenStat},
		{"PutExpected", testPutExpected},
		{"PutDigestMismatch", testPutDigestMismatch},
		{"PutSizeMismatch", testPutSizeMismatch},
		{"PutTooLarge", testPutTooLarge},
		{"PutEmpty", testPutEmpty},
		{"PutReaderError", testPutReaderError},
		{"PutCtxCancelled", testPutCtxCancelled},
		{"PutExisting", testPutExisting},
		{"PutInvalidExpect", testPutInvalidExpect},
		{"ConcurrentSamePut", testConcurrentSamePut},
		{"ConcurrentDifferentPuts", testConcurrentDifferentPuts},
		{"OpenAbsent", testOpenAbsent},
		{"SeekRanges", testSeekRanges},
		{"List", testList},
		{"ListStopsOnError", testListStopsOnError},
		{"Delete", testDelete},
		{"InvalidDigests", testInvalidDigests},
		{"CleanTempEmpty", testCleanTempEmpty},
		{"MetaGetPut", testMetaGetPut},
		{"MetaCreate", testMetaCreate},
		{"MetaList", testMetaList},
		{"MetaDelete", testMetaDelete},
		{"MetaInvalidKeys", testMetaInvalidKeys},
		{"MetaConcurrentCreate", testMetaConcurrentCreate},
		{"MetaAtomicPut", testMetaAtomicPut},
		{"MetaVersion", testMetaVersion},
		{"ListPast1000", testListPast1000},
		{"LargeBlobRanges", testLargeBlobRanges},
	}
	for _, tc := range tests {
		if slices.Contains(skip, tc.name) {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
	RunLocker(t, func(t *testing.T) store.Locker { return newStore(t) })
}

// RunLocker runs the Locker part of the suite on its own, for lockers that
// replace a store's (Consul locks). newLocker must return a locker with no
// lock held.
func RunLocker(t *testing.T, newLocker func(t *testing.T) store.Locker) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s store.Locker)
	}{
		{"LockTryLock", testTryLock},
		{"LockWaits", testLockWaits},
		{"LockCtxTimeout", testLockCtxTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newLocker(t)) })
	}
}

// content returns n deterministic pseudo-random bytes for seed.
func content(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func put(t *testing.T, s store.Store, data []byte, exp store.Expect) store.Info {
	t.Helper()
	info, err := s.Blobs().Put(t.Context(), bytes.NewReader(data), exp)
	if err != nil {
		t.Fatalf("Put(%d bytes, %+v): %v", len(data), exp, err)
	}
	return info
}

func readBlob(t *testing.T, s store.Store, d store.Digest) []byte {
	t.Helper()
	b, err := s.Blobs().Open(t.Context(), d)
	if err != nil {
		t.Fatalf("Open(%s): %v", d, err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		t.Fatalf("reading %s: %v", d, err)
	}
	if b.Size() != int64(len(data)) {
		t.Errorf("Open(%s).Size() = %d, read %d bytes", d, b.Size(), len(data))
	}
	return data
}

func listDigests(t *testing.T, s store.Store) []store.Digest {
	t.Helper()
	var ds []store.Digest
	err := s.Blobs().List(t.Context(), func(i store.Info) error {
		ds = append(ds, i.Digest)
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	slices.Sort(ds)
	return ds
}

// wantBlobs checks that List returns exactly want.
func wantBlobs(t *testing.T, s store.Store, want ...store.Digest) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	if got := listDigests(t, s); !slices.Equal(got, want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

// wantNothingLeft checks that a failed Put left no trace: the blob is not
// stattable, List holds only want, and no temp file remains.
func wantNothingLeft(t *testing.T, s store.Store, failed store.Digest, want ...store.Digest) {
	t.Helper()
	if _, err := s.Blobs().Stat(t.Context(), failed); !store.IsNotExist(err) {
		t.Errorf("Stat(%s) after failed Put: err = %v, want ErrNotFound", failed, err)
	}
	wantBlobs(t, s, want...)
	n, err := s.Blobs().CleanTemp(t.Context(), 0)
	if err != nil || n != 0 {
		t.Errorf("CleanTemp(0) after failed Put = %d, %v; want 0 leftovers", n, err)
	}
}

func testPutOpenStat(t *testing.T, s store.Store) {
	data := content(300_000, 1)
	d := store.DigestOf(data)
	before := time.Now().Add(-2 * time.Second)
	info := put(t, s, data, store.Expect{})
	if info.Digest != d || info.Size != int64(len(data)) {
		t.Errorf("Put = %+v, want digest %s size %d", info, d, len(data))
	}
	st, err := s.Blobs().Stat(t.Context(), d)
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if st.Digest != d || st.Size != int64(len(data)) {
		t.Errorf("Stat = %+v, want digest %s size %d", st, d, len(data))
	}
	if st.ModTime.Before(before) || st.ModTime.After(time.Now().Add(2*time.Second)) {
		t.Errorf("Stat ModTime = %v, want about now", st.ModTime)
	}
	if got := readBlob(t, s, d); !bytes.Equal(got, data) {
		t.Errorf("content read back differs from content put")
	}
}

func testPutExpected(t *testing.T, s store.Store) {
	data := content(1000, 2)
	d := store.DigestOf(data)
	info := put(t, s, data, store.Expect{Digest: d, Size: 1000, MaxSize: 1000})
	if info.Digest != d || info.Size != 1000 {
		t.Errorf("Put = %+v, want digest %s size 1000", info, d)
	}
	if got := readBlob(t, s, d); !bytes.Equal(got, data) {
		t.Errorf("content read back differs")
	}
}

func testPutDigestMismatch(t *testing.T, s store.Store) {
	data := content(5000, 3)
	wrong := store.DigestOf([]byte("something else"))
	_, err := s.Blobs().Put(t.Context(), bytes.NewReader(data), store.Expect{Digest: wrong})
	if !errors.Is(err, store.ErrDigestMismatch) {
		t.Fatalf("Put with wrong digest: err = %v, want ErrDigestMismatch", err)
	}
	wantNothingLeft(t, s, wrong)
	wantNothingLeft(t, s, store.DigestOf(data))
}

func testPutSizeMismatch(t *testing.T, s store.Store) {
	data := content(5000, 4)
	d := store.DigestOf(data)
	for _, size := range []int64{4999, 5001, 1} {
		_, err := s.Blobs().Put(t.Context(), bytes.NewReader(data), store.Expect{Size: size})
		if !errors.Is(err, store.ErrSizeMismatch) {
			t.Errorf("Put 5000 bytes expecting %d: err = %v, want ErrSizeMismatch", size, err)
		}
		_, err = s.Blobs().Put(t.Context(), bytes.NewReader(data), store.Expect{Digest: d, Size: size})
		if !errors.Is(err, store.ErrSizeMismatch) {
			t.Errorf("Put 5000 bytes expecting %d with digest: err = %v, want ErrSizeMismatch", size, err)
		}
	}
	wantNothingLeft(t, s, d)
}

// countingReader yields n bytes of zeros and counts what was read.
type countingReader struct {
	mu        sync.Mutex
	remaining int64
	read      int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.remaining == 0 {
		return 0, io.EOF
	}
	n := int64(len(p))
	n = min(n, c.remaining)
	clear(p[:n])
	c.remaining -= n
	c.read += n
	return int(n), nil
}

func testPutTooLarge(t *testing.T, s store.Store) {
	data := content(11, 5)
	_, err := s.Blobs().Put(t.Context(), bytes.NewReader(data), store.Expect{MaxSize: 10})
	if !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("Put 11 bytes with MaxSize 10: err = %v, want ErrTooLarge", err)
	}
	wantNothingLeft(t, s, store.DigestOf(data))
	put(t, s, data[:10], store.Expect{MaxSize: 10}) // exactly the cap is fine

	const limit, slack = 1 << 20, 8 << 20
	cr := &countingReader{remaining: 1 << 30}
	_, err = s.Blobs().Put(t.Context(), cr, store.Expect{MaxSize: limit})
	if !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("Put 1 GiB with MaxSize 1 MiB: err = %v, want ErrTooLarge", err)
	}
	if cr.read > limit+slack {
		t.Errorf("Put read %d bytes with MaxSize %d: must stop reading soon after the cap", cr.read, limit)
	}
	wantNothingLeft(t, s, store.DigestOf(make([]byte, limit+1)), store.DigestOf(data[:10]))
}

func testPutEmpty(t *testing.T, s store.Store) {
	empty := store.DigestOf(nil)
	info := put(t, s, nil, store.Expect{})
	if info.Digest != empty || info.Size != 0 {
		t.Errorf("Put(empty) = %+v, want digest %s size 0", info, empty)
	}
	put(t, s, nil, store.Expect{Digest: empty})
	st, err := s.Blobs().Stat(t.Context(), empty)
	if err != nil || st.Size != 0 {
		t.Errorf("Stat(empty) = %+v, %v", st, err)
	}
	if got := readBlob(t, s, empty); len(got) != 0 {
		t.Errorf("empty blob read back %d bytes", len(got))
	}
	wantBlobs(t, s, empty)
}

var errBoom = errors.New("boom: source failed")

func testPutReaderError(t *testing.T, s store.Store) {
	data := content(100_000, 6)
	r := io.MultiReader(bytes.NewReader(data[:50_000]), errReader{errBoom})
	_, err := s.Blobs().Put(t.Context(), r, store.Expect{})
	if !errors.Is(err, errBoom) {
		t.Errorf("Put with failing reader: err = %v, want it to wrap %v", err, errBoom)
	}
	_, err = s.Blobs().Put(t.Context(), io.MultiReader(bytes.NewReader(data[:50_000]), errReader{errBoom}),
		store.Expect{Digest: store.DigestOf(data)})
	if !errors.Is(err, errBoom) {
		t.Errorf("Put with failing reader and digest: err = %v, want it to wrap %v", err, errBoom)
	}
	wantNothingLeft(t, s, store.DigestOf(data))
	wantNothingLeft(t, s, store.DigestOf(data[:50_000]))
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// cancellingReader cancels its context after `after` bytes and keeps
// producing data.
type cancellingReader struct {
	cancel context.CancelFunc
	after  int
	read   int
}

func (c *cancellingReader) Read(p []byte) (int, error) {
	if c.read >= c.after {
		c.cancel()
	}
	if c.read >= 256<<20 {
		return 0, io.EOF // give up: Put ignored the cancellation
	}
	p = p[:min(len(p), 32<<10)]
	clear(p)
	c.read += len(p)
	return len(p), nil
}

func testPutCtxCancelled(t *testing.T, s store.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &cancellingReader{cancel: cancel, after: 100_000}
	_, err := s.Blobs().Put(ctx, r, store.Expect{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put with ctx cancelled mid-stream: err = %v, want context.Canceled", err)
	}
	if r.read >= 256<<20 {
		t.Errorf("Put read the whole stream despite cancellation")
	}
	_, err = s.Blobs().Put(ctx, bytes.NewReader([]byte("late")), store.Expect{})
	if err == nil {
		t.Errorf("Put with a cancelled ctx succeeded")
	}
	wantNothingLeft(t, s, store.DigestOf([]byte("late")))
}

func testPutExisting(t *testing.T, s store.Store) {
	data := content(2000, 7)
	d := store.DigestOf(data)
	put(t, s, data, store.Expect{})
	info := put(t, s, data, store.Expect{})
	if info.Digest != d || info.Size != 2000 {
		t.Errorf("re-Put = %+v", info)
	}
	info = put(t, s, data, store.Expect{Digest: d, Size: 2000})
	if info.Digest != d || info.Size != 2000 {
		t.Errorf("re-Put with digest = %+v", info)
	}
	wantBlobs(t, s, d)
}

func testPutInvalidExpect(t *testing.T, s store.Store) {
	for _, d := range []store.Digest{"abc", store.Digest(bytes.Repeat([]byte("A"), 64))} {
		_, err := s.Blobs().Put(t.Context(), bytes.NewReader(nil), store.Expect{Digest: d})
		if err == nil {
			t.Errorf("Put with Expect.Digest %q succeeded", d)
		}
	}
	wantBlobs(t, s)
}

func testConcurrentSamePut(t *testing.T, s store.Store) {
	data := content(1<<20, 8)
	d := store.DigestOf(data)
	errs := make([]error, 16)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			exp := store.Expect{}
			if i%2 == 1 {
				exp = store.Expect{Digest: d, Size: int64(len(data))}
			}
			_, errs[i] = s.Blobs().Put(t.Context(), bytes.NewReader(data), exp)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put #%d: %v", i, err)
		}
	}
	wantBlobs(t, s, d)
	if !bytes.Equal(readBlob(t, s, d), data) {
		t.Errorf("content differs after concurrent puts")
	}
}

func testConcurrentDifferentPuts(t *testing.T, s store.Store) {
	want := make([]store.Digest, 16)
	errs := make([]error, 16)
	var wg sync.WaitGroup
	for i := range want {
		data := content(100_000+i, uint64(100+i))
		want[i] = store.DigestOf(data)
		wg.Go(func() {
			_, errs[i] = s.Blobs().Put(t.Context(), bytes.NewReader(data), store.Expect{Digest: want[i]})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put #%d: %v", i, err)
		}
	}
	wantBlobs(t, s, want...)
	for i, d := range want {
		if !bytes.Equal(readBlob(t, s, d), content(100_000+i, uint64(100+i))) {
			t.Errorf("blob #%d content differs", i)
		}
	}
}

func testOpenAbsent(t *testing.T, s store.Store) {
	d := store.DigestOf([]byte("absent"))
	if _, err := s.Blobs().Open(t.Context(), d); !store.IsNotExist(err) {
		t.Errorf("Open(absent) err = %v, want ErrNotFound", err)
	}
	if _, err := s.Blobs().Stat(t.Context(), d); !store.IsNotExist(err) {
		t.Errorf("Stat(absent) err = %v, want ErrNotFound", err)
	}
}

func testSeekRanges(t *testing.T, s store.Store) {
	data := content(100_000, 9)
	d := put(t, s, data, store.Expect{}).Digest
	b, err := s.Blobs().Open(t.Context(), d)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer b.Close()
	if b.Size() != int64(len(data)) {
		t.Errorf("Size = %d, want %d", b.Size(), len(data))
	}
	ranges := []struct {
		off    int64
		whence int
		pos    int64
		n      int
	}{
		{1000, io.SeekStart, 1000, 500},
		{-10, io.SeekEnd, 99_990, 10},
		{0, io.SeekStart, 0, 1},
		{4999, io.SeekCurrent, 5000, 4096},
		{-100, io.SeekCurrent, 9000 - 4, 100},
	}
	for _, r := range ranges {
		pos, err := b.Seek(r.off, r.whence)
		if err != nil || pos != r.pos {
			t.Fatalf("Seek(%d, %d) = %d, %v; want %d", r.off, r.whence, pos, err, r.pos)
		}
		buf := make([]byte, r.n)
		if _, err := io.ReadFull(b, buf); err != nil {
			t.Fatalf("read %d bytes at %d: %v", r.n, pos, err)
		}
		if !bytes.Equal(buf, data[pos:pos+int64(r.n)]) {
			t.Errorf("bytes at %d..%d differ", pos, pos+int64(r.n))
		}
	}
	if _, err := b.Seek(0, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Read(make([]byte, 10)); n != 0 || err != io.EOF {
		t.Errorf("Read at end = %d, %v; want 0, EOF", n, err)
	}
}

func testList(t *testing.T, s store.Store) {
	wantBlobs(t, s)
	var want []store.Digest
	sizes := map[store.Digest]int64{}
	for i := range 20 {
		data := content(i*37, uint64(200+i))
		d := put(t, s, data, store.Expect{}).Digest
		want = append(want, d)
		sizes[d] = int64(len(data))
	}
	wantBlobs(t, s, want...)
	err := s.Blobs().List(t.Context(), func(i store.Info) error {
		if i.Size != sizes[i.Digest] || i.ModTime.IsZero() {
			t.Errorf("List info %+v, want size %d and a ModTime", i, sizes[i.Digest])
		}
		return nil
	})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
}

func testListStopsOnError(t *testing.T, s store.Store) {
	for i := range 5 {
		put(t, s, content(10, uint64(300+i)), store.Expect{})
	}
	stop := errors.New("stop")
	calls := 0
	err := s.Blobs().List(t.Context(), func(store.Info) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("List with failing fn = %v after %d calls; want %v after 1", err, calls, stop)
	}
}

func testDelete(t *testing.T, s store.Store) {
	a := put(t, s, []byte("a"), store.Expect{}).Digest
	b := put(t, s, []byte("b"), store.Expect{}).Digest
	if err := s.Blobs().Delete(t.Context(), a); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Blobs().Stat(t.Context(), a); !store.IsNotExist(err) {
		t.Errorf("Stat after Delete: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Blobs().Open(t.Context(), a); !store.IsNotExist(err) {
		t.Errorf("Open after Delete: err = %v, want ErrNotFound", err)
	}
	wantBlobs(t, s, b)
	if err := s.Blobs().Delete(t.Context(), a); err != nil {
		t.Errorf("Delete(absent): %v", err)
	}
	put(t, s, []byte("a"), store.Expect{Digest: a})
	wantBlobs(t, s, a, b)
}

var badDigests = []store.Digest{
	"",
	"abc",
	store.Digest(bytes.Repeat([]byte("A"), 64)),
	store.Digest(bytes.Repeat([]byte("g"), 64)),
	store.Digest("../" + string(bytes.Repeat([]byte("a"), 61))),
	store.Digest("ab/" + string(bytes.Repeat([]byte("a"), 61))),
	store.Digest("/" + string(bytes.Repeat([]byte("a"), 63))),
	store.Digest(string(bytes.Repeat([]byte("a"), 64)) + "\x00"),
	store.Digest(string(bytes.Repeat([]byte("a"), 65))),
}

func testInvalidDigests(t *testing.T, s store.Store) {
	put(t, s, []byte("keep"), store.Expect{})
	for _, d := range badDigests {
		if b, err := s.Blobs().Open(t.Context(), d); err == nil {
			b.Close()
			t.Errorf("Open(%q) succeeded", d)
		}
		if _, err := s.Blobs().Stat(t.Context(), d); err == nil {
			t.Errorf("Stat(%q) succeeded", d)
		}
		if err := s.Blobs().Delete(t.Context(), d); err == nil {
			t.Errorf("Delete(%q) succeeded", d)
		}
	}
	wantBlobs(t, s, store.DigestOf([]byte("keep")))
}

func testCleanTempEmpty(t *testing.T, s store.Store) {
	n, err := s.Blobs().CleanTemp(t.Context(), 0)
	if err != nil || n != 0 {
		t.Errorf("CleanTemp on an empty store = %d, %v; want 0, nil", n, err)
	}
	put(t, s, []byte("x"), store.Expect{})
	if err := s.Meta().Put(t.Context(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	n, err = s.Blobs().CleanTemp(t.Context(), 0)
	if err != nil || n != 0 {
		t.Errorf("CleanTemp after successful writes = %d, %v; want 0, nil", n, err)
	}
	wantBlobs(t, s, store.DigestOf([]byte("x")))
}

func metaGet(t *testing.T, m store.Meta, key string) string {
	t.Helper()
	v, err := m.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return string(v)
}

func metaPut(t *testing.T, m store.Meta, key, value string) {
	t.Helper()
	if err := m.Put(t.Context(), key, []byte(value)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func testMetaGetPut(t *testing.T, s store.Store) {
	m := s.Meta()
	if _, err := m.Get(t.Context(), "a/b"); !store.IsNotExist(err) {
		t.Errorf("Get(absent) err = %v, want ErrNotFound", err)
	}
	metaPut(t, m, "a/b", "one")
	if got := metaGet(t, m, "a/b"); got != "one" {
		t.Errorf("Get = %q, want one", got)
	}
	metaPut(t, m, "a/b", "two")
	if got := metaGet(t, m, "a/b"); got != "two" {
		t.Errorf("Get after overwrite = %q, want two", got)
	}
	metaPut(t, m, "empty", "")
	if got := metaGet(t, m, "empty"); got != "" {
		t.Errorf("Get(empty) = %q", got)
	}
	if _, err := m.Get(t.Context(), "a"); !store.IsNotExist(err) {
		t.Errorf("Get of a prefix: err = %v, want ErrNotFound", err)
	}
	metaPut(t, m, "A-z_0.9", "odd chars")
	if got := metaGet(t, m, "A-z_0.9"); got != "odd chars" {
		t.Errorf("Get = %q", got)
	}
}

func testMetaCreate(t *testing.T, s store.Store) {
	m := s.Meta()
	if err := m.Create(t.Context(), "snap/1", []byte("first")); err != nil {
		t.Fatalf("Create: %v", err)
	}
	err := m.Create(t.Context(), "snap/1", []byte("second"))
	if !errors.Is(err, store.ErrExists) {
		t.Errorf("Create(existing) err = %v, want ErrExists", err)
	}
	if got := metaGet(t, m, "snap/1"); got != "first" {
		t.Errorf("Get after failed Create = %q, want first", got)
	}
	metaPut(t, m, "snap/2", "put")
	if err := m.Create(t.Context(), "snap/2", nil); !errors.Is(err, store.ErrExists) {
		t.Errorf("Create over Put value: err = %v, want ErrExists", err)
	}
}

func wantList(t *testing.T, m store.Meta, prefix string, want ...string) {
	t.Helper()
	got, err := m.List(t.Context(), prefix)
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	if want == nil {
		want = []string{}
	}
	if got == nil || !slices.Equal(got, want) {
		t.Errorf("List(%q) = %#v, want %#v", prefix, got, want)
	}
}

func testMetaList(t *testing.T, s store.Store) {
	m := s.Meta()
	wantList(t, m, "")
	for _, k := range []string{"e", "a/d", "a/b/c", "a/b/a", "z/y/x", "b"} {
		metaPut(t, m, k, k)
	}
	wantList(t, m, "", "a", "b", "e", "z")
	wantList(t, m, "a", "b", "d")
	wantList(t, m, "a/b", "a", "c")
	wantList(t, m, "z", "y")
	wantList(t, m, "nope")
	wantList(t, m, "nope/deeper")
	wantList(t, m, "a/b/c")
}

func testMetaDelete(t *testing.T, s store.Store) {
	m := s.Meta()
	metaPut(t, m, "x/y/z", "v")
	metaPut(t, m, "keep", "v")
	if err := m.Delete(t.Context(), "x/y/z"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := m.Get(t.Context(), "x/y/z"); !store.IsNotExist(err) {
		t.Errorf("Get after Delete: err = %v, want ErrNotFound", err)
	}
	if err := m.Delete(t.Context(), "x/y/z"); err != nil {
		t.Errorf("Delete(absent): %v", err)
	}
	if err := m.Delete(t.Context(), "never/was"); err != nil {
		t.Errorf("Delete(never existed): %v", err)
	}
	wantList(t, m, "", "keep")
	wantList(t, m, "x")
	metaPut(t, m, "x/y/z", "again")
	if got := metaGet(t, m, "x/y/z"); got != "again" {
		t.Errorf("Get after re-Put = %q", got)
	}
}

var badKeys = []string{"", "../x", "/abs", "a//b", ".hidden", "a/.hidden", "a/", "a/../b", "./a", "a b", "a\x00b", "a\\b"}

func testMetaInvalidKeys(t *testing.T, s store.Store) {
	m := s.Meta()
	for _, k := range badKeys {
		if _, err := m.Get(t.Context(), k); err == nil || store.IsNotExist(err) {
			t.Errorf("Get(%q) err = %v, want a validation error", k, err)
		}
		if err := m.Put(t.Context(), k, []byte("v")); err == nil {
			t.Errorf("Put(%q) succeeded", k)
		}
		if err := m.Create(t.Context(), k, []byte("v")); err == nil {
			t.Errorf("Create(%q) succeeded", k)
		}
		if err := m.Delete(t.Context(), k); err == nil {
			t.Errorf("Delete(%q) succeeded", k)
		}
		if k != "" && k != "a/" {
			if _, err := m.List(t.Context(), k); err == nil {
				t.Errorf("List(%q) succeeded", k)
			}
		}
	}
	wantList(t, m, "")
}

func testMetaConcurrentCreate(t *testing.T, s store.Store) {
	m := s.Meta()
	errs := make([]error, 16)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() {
			errs[i] = m.Create(t.Context(), "race/key", []byte{byte('a' + i)})
		})
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("Create #%d and #%d both succeeded", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrExists):
			t.Errorf("Create #%d: err = %v, want ErrExists", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no Create succeeded")
	}
	if got := metaGet(t, m, "race/key"); got != string(rune('a'+winner)) {
		t.Errorf("value = %q, want the winner's %q", got, string(rune('a'+winner)))
	}
}

func testMetaAtomicPut(t *testing.T, s store.Store) {
	m := s.Meta()
	vals := [][]byte{bytes.Repeat([]byte("a"), 256<<10), bytes.Repeat([]byte("b"), 300<<10)}
	metaPut(t, m, "atomic", string(vals[0]))
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			if err := m.Put(t.Context(), "atomic", vals[i%2]); err != nil {
				t.Errorf("Put: %v", err)
				return
			}
		}
	}()
	for reads := 0; ; reads++ {
		select {
		case <-done:
			return
		default:
		}
		v, err := m.Get(t.Context(), "atomic")
		if err != nil {
			t.Fatalf("Get during Puts: %v", err)
		}
		if !bytes.Equal(v, vals[0]) && !bytes.Equal(v, vals[1]) {
			t.Fatalf("Get saw a torn value (%d bytes)", len(v))
		}
	}
}

func testTryLock(t *testing.T, s store.Locker) {
	unlock, err := s.TryLock(t.Context(), "sync/debian")
	if err != nil {
		t.Fatalf("TryLock: %v", err)
	}
	if _, err := s.TryLock(t.Context(), "sync/debian"); !errors.Is(err, store.ErrLocked) {
		t.Errorf("TryLock while held: err = %v, want ErrLocked", err)
	}
	other, err := s.TryLock(t.Context(), "sync/ubuntu")
	if err != nil {
		t.Errorf("TryLock of another name: %v", err)
	} else {
		other()
	}
	unlock()
	unlock() // idempotent
	again, err := s.TryLock(t.Context(), "sync/debian")
	if err != nil {
		t.Fatalf("TryLock after unlock: %v", err)
	}
	again()
	if _, err := s.TryLock(t.Context(), "../escape"); err == nil {
		t.Errorf("TryLock with an invalid name succeeded")
	}
}

func testLockWaits(t *testing.T, s store.Locker) {
	unlock, err := s.TryLock(t.Context(), "gc")
	if err != nil {
		t.Fatalf("TryLock: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	type result struct {
		unlock func()
		err    error
	}
	got := make(chan result, 1)
	go func() {
		u, err := s.Lock(ctx, "gc")
		got <- result{u, err}
	}()
	select {
	case r := <-got:
		t.Fatalf("Lock returned while held: %v", r.err)
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	r := <-got
	if r.err != nil {
		t.Fatalf("Lock after release: %v", r.err)
	}
	r.unlock()
}

func testLockCtxTimeout(t *testing.T, s store.Locker) {
	unlock, err := s.TryLock(t.Context(), "gc")
	if err != nil {
		t.Fatalf("TryLock: %v", err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Lock(ctx, "gc")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Lock while held with timeout: err = %v, want DeadlineExceeded", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Lock took %v to notice its ctx expired", el)
	}
}

// testMetaVersion checks the optional store.Versioner: the value moves
// after every completed Put, Create and Delete, and stays put otherwise.
func testMetaVersion(t *testing.T, s store.Store) {
	v, ok := s.Meta().(store.Versioner)
	if !ok {
		t.Log("Meta has no Version (optional capability)")
		return
	}
	ctx := context.Background()
	cur := func() uint64 {
		t.Helper()
		n, err := v.Version()
		if err != nil {
			t.Fatalf("Version: %v", err)
		}
		return n
	}
	last := cur()
	steps := []struct {
		what string
		fn   func() error
	}{
		{"Put", func() error { return s.Meta().Put(ctx, "v/a", []byte("1")) }},
		{"Put again", func() error { return s.Meta().Put(ctx, "v/a", []byte("2")) }},
		{"Create", func() error { return s.Meta().Create(ctx, "v/b", []byte("1")) }},
		{"Delete", func() error { return s.Meta().Delete(ctx, "v/a") }},
	}
	for _, st := range steps {
		if err := st.fn(); err != nil {
			t.Fatalf("%s: %v", st.what, err)
		}
		now := cur()
		if now == last {
			t.Fatalf("Version did not change after %s", st.what)
		}
		last = now
	}
	if _, err := s.Meta().Get(ctx, "v/b"); err != nil {
		t.Fatal(err)
	}
	if cur() != last {
		t.Fatal("Version changed after a read")
	}
}

func testListPast1000(t *testing.T, s store.Store) {
	const n = 1050
	want := make([]store.Digest, n)
	keys := make([]string, n)
	g, ctx := errgroup.WithContext(t.Context())
	g.SetLimit(16)
	for i := range n {
		data := []byte(fmt.Sprintf("blob %d", i))
		want[i] = store.DigestOf(data)
		keys[i] = fmt.Sprintf("many/k%04d", i)
		g.Go(func() error {
			if _, err := s.Blobs().Put(ctx, bytes.NewReader(data), store.Expect{Digest: want[i]}); err != nil {
				return err
			}
			return s.Meta().Put(ctx, keys[i], data)
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("writing %d blobs and keys: %v", n, err)
	}
	wantBlobs(t, s, want...)
	got, err := s.Meta().List(t.Context(), "many")
	if err != nil {
		t.Fatal(err)
	}
	wantNames := make([]string, n)
	for i, k := range keys {
		wantNames[i] = k[len("many/"):]
	}
	if !slices.Equal(got, wantNames) {
		t.Errorf("Meta.List(many) returned %d names, want %d (first %v)", len(got), n, got[:min(3, len(got))])
	}
}

func testLargeBlobRanges(t *testing.T, s store.Store) {
	data := content(21<<20+123, 77)
	d := store.DigestOf(data)
	for _, exp := range []store.Expect{{Digest: d, Size: int64(len(data))}, {}, {Digest: d}} {
		if err := s.Blobs().Delete(t.Context(), d); err != nil {
			t.Fatal(err)
		}
		info := put(t, s, data, exp)
		if info.Digest != d || info.Size != int64(len(data)) {
			t.Fatalf("Put(%+v) = %+v", exp, info)
		}
		if !bytes.Equal(readBlob(t, s, d), data) {
			t.Fatalf("large blob put with %+v reads back different", exp)
		}
	}
	b, err := s.Blobs().Open(t.Context(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, off := range []int64{0, 5<<20 - 1, 16 << 20, int64(len(data)) - 4096} {
		if _, err := b.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4096)
		if _, err := io.ReadFull(b, buf); err != nil {
			t.Fatalf("read 4096 bytes at %d: %v", off, err)
		}
		if !bytes.Equal(buf, data[off:off+4096]) {
			t.Errorf("bytes at %d differ", off)
		}
	}
	bad := slices.Clone(data)
	bad[len(bad)-1] ^= 1
	other := store.DigestOf(bad)
	for _, exp := range []store.Expect{{Digest: d, Size: int64(len(bad))}, {Digest: d}} {
		s.Blobs().Delete(t.Context(), d)
		_, err := s.Blobs().Put(t.Context(), bytes.NewReader(bad), exp)
		if !errors.Is(err, store.ErrDigestMismatch) {
			t.Errorf("Put of a large blob with a wrong last byte (%+v): err = %v, want ErrDigestMismatch", exp, err)
		}
		wantNothingLeft(t, s, d)
		wantNothingLeft(t, s, other)
	}
}
