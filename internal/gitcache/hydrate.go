package gitcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/mirrord/mirrord/internal/store"
)

// presentDir (in a source's state dir) holds one empty file per pack of the
// store whose objects are in the local repository: placed there by
// hydrate, or written from it by a sync. trim, which prunes objects,
// empties it.
const presentDir = "packs-present"

func (m *mirror) presentPath(name string) string {
	return filepath.Join(filepath.Dir(m.dir), presentDir, name)
}

func (m *mirror) markPresent(name string) error {
	p := m.presentPath(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, nil, 0o644)
}

func (m *mirror) isPresent(name string) bool {
	_, err := os.Stat(m.presentPath(name))
	return err == nil
}

// hydrate makes the repository whole for rs from the chain in blobs: it
// places every pack not present yet into objects/pack (each file streamed
// from the store and checked against its digest, the .idx last), then pins
// rs. A repository that pins rs already is left alone. It is idempotent,
// so an interrupted run is finished by the next.
func (m *mirror) hydrate(ctx context.Context, blobs store.Blobs, rs RefSet, chain []pack) error {
	// Without the lock a ref may be half-written by another holder (go-git
	// truncates, then writes): an error here only means "decide under the
	// lock".
	if ok, err := m.pinned(rs); err == nil && ok {
		return nil
	}
	unlock, err := lockRepo(m.dir)
	if err != nil {
		return err
	}
	defer unlock()
	// Another process or request may have finished it meanwhile; its
	// refs must not be rewritten under readers.
	if ok, err := m.pinned(rs); err != nil || ok {
		return err
	}
	for _, p := range chain {
		if m.isPresent(p.name) {
			continue
		}
		// A pack's name is the digest of its object ids: one of that
		// name in place (from a local repack) holds the same objects.
		if _, err := os.Stat(filepath.Join(m.dir, "objects", "pack", p.name+".idx")); err == nil {
			if err := m.markPresent(p.name); err != nil {
				return err
			}
			continue
		}
		for _, f := range p.files {
			dst := filepath.Join(m.dir, "objects", "pack", path.Base(f.Path))
			if err := placeBlob(ctx, blobs, f.Digest, f.Size, dst); err != nil {
				return fmt.Errorf("placing %s from the store: %w", f.Path, err)
			}
		}
		if err := m.markPresent(p.name); err != nil {
			return err
		}
	}
	return m.pin(rs)
}

// placeBlob copies blob d into file dst through a temp file, checking size
// and digest, and renames it into place.
func placeBlob(ctx context.Context, blobs store.Blobs, d store.Digest, size int64, dst string) error {
	rc, err := blobs.Open(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), "tmp_mirrord_")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), rc)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := store.Digest(hex.EncodeToString(h.Sum(nil))); n != size || got != d {
		return fmt.Errorf("blob %s: read %d bytes with sha256 %s, want %d bytes: %w", d, n, got, size, errCorruptBlob)
	}
	if err := os.Chmod(tmp.Name(), 0o444); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), dst)
}

var errCorruptBlob = errors.New("the store returned other content than its digest names (run mirrord verify)")

// clearPresent forgets which packs are present (after objects were pruned).
func clearPresent(stateDir string) error {
	err := os.RemoveAll(filepath.Join(stateDir, presentDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
