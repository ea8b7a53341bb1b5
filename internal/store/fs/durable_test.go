package fs

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/store"
)

func TestSyncClearsMarker(t *testing.T) {
	ctx := context.Background()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	b := s.Blobs().(*Blobs)
	if _, err := b.Put(ctx, strings.NewReader("x"), store.Expect{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.l.marker()); err != nil {
		t.Fatalf("no unsynced marker after a Put: %v", err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.l.marker()); !os.IsNotExist(err) {
		t.Fatalf("marker survived Sync: %v", err)
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatalf("second Sync: %v", err)
	}
}

// A process that died before Sync may leave blobs a power loss truncated:
// Recover deletes those (and only those) and clears the marker.
func TestRecoverDropsDamagedUnsyncedBlobs(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b := s.Blobs().(*Blobs)
	good, err := b.Put(ctx, strings.NewReader("intact content"), store.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	bad, err := b.Put(ctx, strings.NewReader("content the crash truncated"), store.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	p := b.BlobPath(bad.Digest)
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte("content the"), 0o444); err != nil {
		t.Fatal(err)
	}
	// A new process opens the store; no Sync ever ran.
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	b2 := s2.Blobs().(*Blobs)
	n, err := b2.Recover(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Recover = %d, %v; want 1 blob removed", n, err)
	}
	if _, err := b2.Stat(ctx, bad.Digest); !store.IsNotExist(err) {
		t.Errorf("damaged blob still present: %v", err)
	}
	if _, err := b2.Stat(ctx, good.Digest); err != nil {
		t.Errorf("intact blob removed: %v", err)
	}
	if _, err := os.Stat(b2.l.marker()); !os.IsNotExist(err) {
		t.Errorf("marker survived Recover: %v", err)
	}
	if n, err := b2.Recover(ctx); n != 0 || err != nil {
		t.Errorf("second Recover = %d, %v", n, err)
	}
}
