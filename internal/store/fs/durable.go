package fs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/mirrord/mirrord/internal/store"
)

// Durability is batched: Put does not fsync each blob and its directory
// (that cost dominates syncs of many small packages). Instead:
//
//  1. before the first unsynced Put, the marker file <root>/unsynced is
//     created and made durable;
//  2. Sync (called by snapshot.Catalog.Commit before it writes a record)
//     flushes the whole filesystem with syncfs(2) and then removes the marker;
//  3. Recover (called at the start of every sync, under the sync lock) finds
//     a marker left by a process that died before its Sync, re-hashes every
//     blob written since the marker, deletes those whose content does not
//     match their name, and removes the marker.
//
// So a snapshot record is never durable before its blobs, and a blob that a
// power loss left truncated is never trusted (a later Put with that digest
// would otherwise skip the download). A kill -9 loses nothing: the kernel
// still has the data.
type durability struct {
	mu     sync.Mutex
	marked bool   // the marker exists and is durable
	gen    uint64 // Puts started since the marker was made
}

const markerName = "unsynced"

func (l layout) marker() string { return l.root() + "/" + markerName }

// mark makes sure the marker exists before an unsynced write.
func (b *Blobs) mark() error {
	b.dur.mu.Lock()
	defer b.dur.mu.Unlock()
	b.dur.gen++
	if b.dur.marked {
		return nil
	}
	f, err := os.OpenFile(b.l.marker(), os.O_CREATE|os.O_WRONLY, 0o644)
	if err == nil {
		_, err = fmt.Fprintf(f, "pid %d, %s\n", os.Getpid(), time.Now().UTC().Format(time.RFC3339Nano))
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = syncDir(b.l.root())
	}
	if err != nil {
		return fmt.Errorf("marking unsynced writes: %w", err)
	}
	b.dur.marked = true
	return nil
}

// Sync implements store.Syncer: every Put that has returned is durable
// when it returns.
func (b *Blobs) Sync(ctx context.Context) error {
	b.dur.mu.Lock()
	marked, gen := b.dur.marked, b.dur.gen
	b.dur.mu.Unlock()
	if !marked {
		return nil
	}
	if err := syncFS(b.l.root()); err != nil {
		return err
	}
	b.dur.mu.Lock()
	defer b.dur.mu.Unlock()
	if b.dur.gen != gen {
		return nil // more Puts started meanwhile: the next Sync clears the marker
	}
	if err := os.Remove(b.l.marker()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("clearing the unsynced marker: %w", err)
	}
	b.dur.marked = false
	return syncDir(b.l.root())
}

func syncFS(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		return fmt.Errorf("syncfs %s: %w", dir, err)
	}
	return nil
}

// Recover implements store.Recoverer. It must run while no Put is in
// flight on this store (the caller holds the sync lock).
func (b *Blobs) Recover(ctx context.Context) (removed int, err error) {
	st, err := os.Stat(b.l.marker())
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	// Blob mtimes come from the same clock; allow for coarse timestamps.
	since := st.ModTime().Add(-2 * time.Second)
	err = b.List(ctx, func(in store.Info) error {
		if in.ModTime.Before(since) {
			return nil
		}
		ok, err := b.intact(in.Digest)
		if err != nil || ok {
			return err
		}
		removed++
		return b.Delete(ctx, in.Digest)
	})
	if err != nil {
		return removed, fmt.Errorf("recovering unsynced writes: %w", err)
	}
	if err := syncFS(b.l.root()); err != nil {
		return removed, err
	}
	if err := os.Remove(b.l.marker()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return removed, err
	}
	return removed, syncDir(b.l.root())
}

// intact re-hashes blob d.
func (b *Blobs) intact(d store.Digest) (bool, error) {
	f, err := os.Open(b.l.blob(d))
	if errors.Is(err, os.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("re-hashing %s: %w", d, err)
	}
	return hex.EncodeToString(h.Sum(nil)) == string(d), nil
}
