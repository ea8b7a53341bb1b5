package readcache

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/fs"
	"github.com/mirrord/mirrord/internal/store/s3"
	"github.com/mirrord/mirrord/internal/store/s3/s3test"
)

func putBlob(t *testing.T, b store.Blobs, data []byte) store.Digest {
	t.Helper()
	info, err := b.Put(t.Context(), bytes.NewReader(data), store.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	return info.Digest
}

func readFile(t *testing.T, c *Blobs, d store.Digest) []byte {
	t.Helper()
	f, ok, err := c.OpenFile(t.Context(), d)
	if err != nil || !ok {
		t.Fatalf("OpenFile(%s) = %v, %v", d, ok, err)
	}
	defer f.Close()
	data, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLRU(t *testing.T) {
	st, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c, err := New(st.Blobs(), dir, 4000, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ds []store.Digest
	for i := range 5 {
		ds = append(ds, putBlob(t, c, bytes.Repeat([]byte{byte('a' + i)}, 1000)))
	}
	for _, d := range ds[:4] {
		readFile(t, c, d)
	}
	if n, total := c.Stats(); n != 4 || total != 4000 {
		t.Fatalf("Stats = %d, %d; want 4, 4000", n, total)
	}
	readFile(t, c, ds[0]) // now the most recent
	readFile(t, c, ds[4]) // evicts ds[1], the least recent
	if _, err := os.Stat(c.path(ds[1])); !os.IsNotExist(err) {
		t.Errorf("least recently used blob still cached: %v", err)
	}
	for _, d := range []store.Digest{ds[0], ds[2], ds[3], ds[4]} {
		if _, err := os.Stat(c.path(d)); err != nil {
			t.Errorf("blob %s not cached: %v", d[:8], err)
		}
	}
	big := putBlob(t, c, bytes.Repeat([]byte("z"), 1001)) // > max/4
	if f, ok, err := c.OpenFile(t.Context(), big); ok || err != nil || f != nil {
		t.Errorf("OpenFile(too large) = %v, %v, %v; want not cached", f, ok, err)
	}
	if err := c.Delete(t.Context(), ds[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.path(ds[0])); !os.IsNotExist(err) {
		t.Errorf("deleted blob still cached")
	}
	// A new process finds what the cache holds.
	os.WriteFile(filepath.Join(dir, "fill-123.tmp"), []byte("partial"), 0o644)
	c2, err := New(st.Blobs(), dir, 4000, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, total := c2.Stats(); n != 3 || total != 3000 {
		t.Errorf("after restart Stats = %d, %d; want 3, 3000", n, total)
	}
	if _, err := os.Stat(filepath.Join(dir, "fill-123.tmp")); !os.IsNotExist(err) {
		t.Errorf("leftover fill not removed")
	}
}

func TestFillVerifies(t *testing.T) {
	st, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(st.Blobs(), t.TempDir(), 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	d := putBlob(t, c, []byte("original content"))
	p := st.Blobs().(store.Filer).BlobPath(d)
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("damaged content!"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.OpenFile(t.Context(), d); !errors.Is(err, store.ErrDigestMismatch) {
		t.Errorf("OpenFile of a damaged blob: err = %v, want ErrDigestMismatch", err)
	}
	if n, _ := c.Stats(); n != 0 {
		t.Errorf("a damaged blob was cached")
	}
}

func TestConcurrentMissesFetchOnce(t *testing.T) {
	st, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(st.Blobs(), t.TempDir(), 1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 4<<20)
	d := putBlob(t, c, data)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if got := readFile(t, c, d); !bytes.Equal(got, data) {
				t.Errorf("content differs")
			}
		})
	}
	wg.Wait()
}

// TestServesWhileS3Down: cached blobs stay readable (Open, Stat, OpenFile)
// while the S3 server is stopped; others fail with ErrUnavailable.
func TestServesWhileS3Down(t *testing.T) {
	srv := s3test.Start(t)
	st, err := s3.New(t.Context(), s3.Options{
		Endpoint: srv.Endpoint(), Bucket: srv.Bucket("cache-test"), PathStyle: true,
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, TempDir: t.TempDir(), MaxAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(st.Blobs(), t.TempDir(), 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	hot := putBlob(t, c, []byte("hot blob"))
	cold := putBlob(t, c, []byte("cold blob"))
	if err := c.Sync(t.Context()); err != nil { // both in the bucket, not write-behind queued
		t.Fatal(err)
	}
	readFile(t, c, hot)
	srv.Stop()
	if got := readFile(t, c, hot); string(got) != "hot blob" {
		t.Errorf("cached blob = %q", got)
	}
	b, err := c.Open(t.Context(), hot)
	if err != nil {
		t.Fatalf("Open(cached) with S3 down: %v", err)
	}
	got, _ := io.ReadAll(b)
	b.Close()
	if string(got) != "hot blob" {
		t.Errorf("Open(cached) = %q", got)
	}
	if info, err := c.Stat(t.Context(), hot); err != nil || info.Size != 8 {
		t.Errorf("Stat(cached) = %+v, %v", info, err)
	}
	_, _, err = c.OpenFile(t.Context(), cold)
	if !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("OpenFile(uncached) with S3 down: err = %v, want ErrUnavailable", err)
	}
	srv.Start()
	if got := readFile(t, c, cold); string(got) != "cold blob" {
		t.Errorf("after S3 is back: %q", got)
	}
}
