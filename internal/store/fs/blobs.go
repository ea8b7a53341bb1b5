package fs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/mirrord/mirrord/internal/store"
)

// Blobs is the blob half of a Store. It implements store.Blobs and
// store.Filer.
type Blobs struct {
	l    layout
	bufs sync.Pool // *[]byte of copyBufSize, reused across Puts
	dur  durability
}

// copyBufSize is the chunk size of Put's copy; ctx is checked between chunks.
const copyBufSize = 256 << 10

// BlobPath returns the path of the file holding blob d (whether or not it
// exists), or "" if d is not a valid digest.
func (b *Blobs) BlobPath(d store.Digest) string {
	if _, err := store.ParseDigest(string(d)); err != nil {
		return ""
	}
	return b.l.blob(d)
}

// Put implements store.Blobs. If exp.Digest is set and the blob exists, Put
// refreshes its mtime and returns without reading r.
func (b *Blobs) Put(ctx context.Context, r io.Reader, exp store.Expect) (store.Info, error) {
	limit, err := checkExpect(exp)
	if err != nil {
		return store.Info{}, err
	}
	if exp.Digest != "" {
		info, ok, err := b.refresh(exp.Digest, exp.Size)
		if ok || err != nil {
			return info, err
		}
	}
	tmp, info, err := b.writeTemp(ctx, r, exp, limit)
	if err != nil {
		return store.Info{}, err
	}
	return b.commit(tmp, info)
}

// checkExpect validates exp and returns the effective size cap.
func checkExpect(exp store.Expect) (int64, error) {
	if exp.Digest != "" {
		if _, err := store.ParseDigest(string(exp.Digest)); err != nil {
			return 0, fmt.Errorf("put: %w", err)
		}
	}
	if exp.Size < 0 || exp.MaxSize < 0 {
		return 0, fmt.Errorf("put %s: negative size %d or max size %d", exp.Digest, exp.Size, exp.MaxSize)
	}
	limit := exp.MaxSize
	if limit == 0 {
		limit = store.DefaultMaxSize
	}
	if exp.Size > limit {
		return 0, fmt.Errorf("put %s: expected size %d exceeds cap %d: %w", exp.Digest, exp.Size, limit, store.ErrTooLarge)
	}
	return limit, nil
}

// refresh touches blob d if it exists and reports its info. ok is false
// when the blob is absent.
func (b *Blobs) refresh(d store.Digest, wantSize int64) (info store.Info, ok bool, err error) {
	path := b.l.blob(d)
	if err := touch(path); err != nil {
		if errors.Is(err, iofs.ErrNotExist) {
			return store.Info{}, false, nil
		}
		return store.Info{}, false, fmt.Errorf("put %s: refresh mtime: %w", d, err)
	}
	info, err = statBlob(path, d)
	if errors.Is(err, store.ErrNotFound) {
		return store.Info{}, false, nil // deleted meanwhile: write it again
	}
	if err == nil && wantSize > 0 && info.Size != wantSize {
		err = fmt.Errorf("put %s: expected %d bytes, stored blob has %d: %w", d, wantSize, info.Size, store.ErrSizeMismatch)
	}
	return info, err == nil, err
}

// touch sets path's mtime to now. Lacking permission (a blob owned by
// another user) is tolerated: the blob is there, only its mtime is stale.
func touch(path string) error {
	now := time.Now()
	err := os.Chtimes(path, now, now)
	if errors.Is(err, iofs.ErrPermission) {
		if _, serr := os.Stat(path); serr != nil {
			return serr
		}
		return nil
	}
	return err
}

// writeTemp streams r into a temp file, verifies it against exp and returns
// the temp's path, fsynced, closed and read-only. On error nothing is left.
func (b *Blobs) writeTemp(ctx context.Context, r io.Reader, exp store.Expect, limit int64) (path string, info store.Info, err error) {
	if err := b.mark(); err != nil {
		return "", store.Info{}, err
	}
	f, err := b.l.createTemp(blobTempPrefix)
	if err != nil {
		return "", store.Info{}, fmt.Errorf("put %s: %w", exp.Digest, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	buf, _ := b.bufs.Get().(*[]byte)
	if buf == nil {
		buf = new([]byte)
		*buf = make([]byte, copyBufSize)
	}
	info, err = copyVerify(ctx, f, r, exp, limit, *buf)
	b.bufs.Put(buf)
	if err != nil {
		return "", store.Info{}, err
	}
	if err = finishFile(f); err != nil {
		return "", store.Info{}, fmt.Errorf("put %s: %w", info.Digest, err)
	}
	return f.Name(), info, nil
}

// copyVerify copies at most one byte more than allowed from r to w, hashing,
// and checks the result against exp.
func copyVerify(ctx context.Context, w io.Writer, r io.Reader, exp store.Expect, limit int64, buf []byte) (store.Info, error) {
	readCap := limit
	if exp.Size > 0 && exp.Size < readCap {
		readCap = exp.Size // one more byte proves a size mismatch
	}
	h := sha256.New()
	src := ctxReader{ctx: ctx, r: io.LimitReader(r, readCap+1)}
	n, err := io.CopyBuffer(io.MultiWriter(w, h), src, buf)
	if err != nil {
		return store.Info{}, fmt.Errorf("put %s: after %d bytes: %w", exp.Digest, n, err)
	}
	got := store.Digest(hex.EncodeToString(h.Sum(nil)))
	return store.Info{Digest: got, Size: n}, verify(exp, limit, got, n)
}

// verify compares what was read with what was expected.
func verify(exp store.Expect, limit int64, got store.Digest, n int64) error {
	switch {
	case n > limit:
		return fmt.Errorf("put %s: more than %d bytes: %w", exp.Digest, limit, store.ErrTooLarge)
	case exp.Size > 0 && n > exp.Size:
		return fmt.Errorf("put %s: expected %d bytes, got more: %w", exp.Digest, exp.Size, store.ErrSizeMismatch)
	case exp.Size > 0 && n != exp.Size:
		return fmt.Errorf("put %s: expected %d bytes, got %d: %w", exp.Digest, exp.Size, n, store.ErrSizeMismatch)
	case exp.Digest != "" && got != exp.Digest:
		return fmt.Errorf("put: expected sha256 %s, got %s: %w", exp.Digest, got, store.ErrDigestMismatch)
	}
	return nil
}

// finishFile closes and write-protects a fully written temp file. It is
// made durable later, by Sync (see durable.go).
func finishFile(f *os.File) error {
	if err := f.Chmod(0o444); err != nil {
		return fmt.Errorf("chmod %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	return nil
}

// commit moves a verified temp file into place, or drops it when the blob
// exists already (refreshing that blob's mtime instead).
func (b *Blobs) commit(tmp string, info store.Info) (store.Info, error) {
	got, ok, err := b.refresh(info.Digest, 0)
	if ok || err != nil {
		os.Remove(tmp)
		return got, err
	}
	if err := b.rename(tmp, info.Digest); err != nil {
		return store.Info{}, fmt.Errorf("put %s: %w", info.Digest, err)
	}
	return statBlob(b.l.blob(info.Digest), info.Digest)
}

// rename moves tmp to blob d's path (made durable by Sync); tmp is
// removed if it cannot be moved. Content is identical for one digest, so
// racing renames are harmless.
func (b *Blobs) rename(tmp string, d store.Digest) error {
	dir := b.l.fanout(d)
	err := os.MkdirAll(dir, 0o755)
	if err == nil {
		err = os.Rename(tmp, b.l.blob(d))
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// statBlob stats the blob file at path.
func statBlob(path string, d store.Digest) (store.Info, error) {
	fi, err := os.Stat(path)
	if errors.Is(err, iofs.ErrNotExist) {
		return store.Info{}, fmt.Errorf("blob %s: %w", d, store.ErrNotFound)
	}
	if err != nil {
		return store.Info{}, fmt.Errorf("blob %s: %w", d, err)
	}
	return store.Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Stat implements store.Blobs.
func (b *Blobs) Stat(ctx context.Context, d store.Digest) (store.Info, error) {
	if _, err := store.ParseDigest(string(d)); err != nil {
		return store.Info{}, fmt.Errorf("stat blob: %w", err)
	}
	return statBlob(b.l.blob(d), d)
}

// Open implements store.Blobs; the blob's dynamic type is *BlobFile.
func (b *Blobs) Open(ctx context.Context, d store.Digest) (store.Blob, error) {
	if _, err := store.ParseDigest(string(d)); err != nil {
		return nil, fmt.Errorf("open blob: %w", err)
	}
	f, err := os.Open(b.l.blob(d))
	if errors.Is(err, iofs.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", d, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open blob %s: %w", d, err)
	}
	return &BlobFile{f: f, size: fi.Size()}, nil
}

// Delete implements store.Blobs.
func (b *Blobs) Delete(ctx context.Context, d store.Digest) error {
	if _, err := store.ParseDigest(string(d)); err != nil {
		return fmt.Errorf("delete blob: %w", err)
	}
	err := os.Remove(b.l.blob(d))
	if err != nil && !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("delete blob %s: %w", d, err)
	}
	return nil
}

// List implements store.Blobs. Files whose names are not digests, or that
// sit in the wrong fan-out directory, are ignored.
func (b *Blobs) List(ctx context.Context, fn func(store.Info) error) error {
	fans, err := os.ReadDir(b.l.blobsDir())
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, fan := range fans {
		if !fan.IsDir() || !isFanout(fan.Name()) {
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("list blobs: %w", err)
		}
		if err := b.listFanout(fan.Name(), fn); err != nil {
			return err
		}
	}
	return nil
}

func isFanout(name string) bool {
	return len(name) == 2 && isLowerHex(name[0]) && isLowerHex(name[1])
}

func isLowerHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }

// listFanout calls fn for each blob in one fan-out directory.
func (b *Blobs) listFanout(fan string, fn func(store.Info) error) error {
	dir := filepath.Join(b.l.blobsDir(), fan)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list blobs in %s: %w", dir, err)
	}
	for _, e := range entries {
		d, err := store.ParseDigest(e.Name())
		if err != nil || string(d[:2]) != fan || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, iofs.ErrNotExist) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return fmt.Errorf("list blob %s: %w", d, err)
		}
		if err := fn(store.Info{Digest: d, Size: fi.Size(), ModTime: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}

// CleanTemp implements store.Blobs: it removes temp files (of blob and
// metadata writes) in tmp/ whose mtime is at least age ago.
func (b *Blobs) CleanTemp(ctx context.Context, age time.Duration) (int, error) {
	entries, err := os.ReadDir(b.l.tmpDir())
	if err != nil {
		return 0, fmt.Errorf("clean temp: %w", err)
	}
	cutoff := time.Now().Add(-age)
	n := 0
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return n, fmt.Errorf("clean temp: %w", err)
		}
		removed, err := b.cleanOne(e, cutoff)
		if err != nil {
			return n, err
		}
		if removed {
			n++
		}
	}
	return n, nil
}

// cleanOne removes one stale temp file.
func (b *Blobs) cleanOne(e iofs.DirEntry, cutoff time.Time) (bool, error) {
	if !e.Type().IsRegular() || !isTempName(e.Name()) {
		return false, nil
	}
	fi, err := e.Info()
	if errors.Is(err, iofs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("clean temp %s: %w", e.Name(), err)
	}
	if fi.ModTime().After(cutoff) {
		return false, nil
	}
	err = os.Remove(filepath.Join(b.l.tmpDir(), e.Name()))
	if errors.Is(err, iofs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("clean temp %s: %w", e.Name(), err)
	}
	return true, nil
}

// BlobFile is an open blob backed by a read-only *os.File.
type BlobFile struct {
	f    *os.File
	size int64
}

var _ store.Blob = (*BlobFile)(nil)

// File returns the underlying file, e.g. for sendfile. Closing the BlobFile
// closes it.
func (b *BlobFile) File() *os.File { return b.f }

// Size returns the blob's size in bytes.
func (b *BlobFile) Size() int64 { return b.size }

// Read implements io.Reader.
func (b *BlobFile) Read(p []byte) (int, error) { return b.f.Read(p) }

// ReadAt implements io.ReaderAt.
func (b *BlobFile) ReadAt(p []byte, off int64) (int, error) { return b.f.ReadAt(p, off) }

// Seek implements io.Seeker.
func (b *BlobFile) Seek(off int64, whence int) (int64, error) { return b.f.Seek(off, whence) }

// Close implements io.Closer.
func (b *BlobFile) Close() error { return b.f.Close() }
