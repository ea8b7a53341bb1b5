package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/ProtonMail/go-crypto/openpgp"
	"golang.org/x/sync/errgroup"

	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// Result says what reading a bundle found or did.
type Result struct {
	Manifest *Manifest
	Signer   string // fingerprint of the key that signed the manifest
	Blobs    int    // blobs in the bundle
	Bytes    int64  // their bytes
	Written  int    // blobs imported now (the rest were present already)
	Present  bool   // the snapshot was already present: nothing was done
}

// Verify reads the whole bundle and checks its signature, its layout
// and every entry's digest and size, writing nothing.
func Verify(ctx context.Context, src *Source, keyring openpgp.EntityList, prog progress.Reporter) (res Result, err error) {
	st, err := src.open(keyring)
	if err != nil {
		return res, err
	}
	defer st.Close()
	res = newResult(st)
	task := reporter(prog).Task("verify "+st.Manifest.Snapshot, progress.Bytes, st.Manifest.Bytes)
	defer func() { task.Done(err) }()
	buf := make([]byte, 256<<10)
	err = src.read(ctx, st, func(e entry, r io.Reader) error {
		if e.record {
			return checkRecord(st.Manifest, e, r)
		}
		return hashAll(progressReader{r, task}, e, buf)
	})
	return res, err
}

func newResult(st *stream) Result {
	m := st.Manifest
	return Result{Manifest: m, Signer: fingerprint(st.Signer), Blobs: len(m.Blobs), Bytes: m.Bytes}
}

// checkRecord reads the record entry and checks it against the manifest.
func checkRecord(m *Manifest, e entry, r io.Reader) error {
	data, err := io.ReadAll(io.LimitReader(r, maxRecord+1))
	if err != nil {
		return err
	}
	_, err = recordOf(m, e, data)
	return err
}

func recordOf(m *Manifest, e entry, data []byte) (*snapshot.Record, error) {
	if err := check(e, store.DigestOf(data), int64(len(data))); err != nil {
		return nil, err
	}
	rec, err := snapshot.ParseRecord(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorrupt, e, err)
	}
	if rec.ID != m.Snapshot {
		return nil, fmt.Errorf("%w: the record is snapshot %s, the manifest says %s", ErrCorrupt, rec.ID, m.Snapshot)
	}
	return rec, nil
}

// Importer takes bundles into a catalog.
type Importer struct {
	Catalog  *snapshot.Catalog
	Progress progress.Reporter
}

// Import verifies the bundle's signature against keyring, refuses it if
// its base snapshot is absent, then streams every blob into the store
// (each checked against its digest while it is written) and only then
// commits the snapshot record under the bundle's ID. A bundle whose
// snapshot is present already is a no-op. An import cut short leaves
// verified blobs and no record; the next import reuses those blobs.
func (im *Importer) Import(ctx context.Context, src *Source, keyring openpgp.EntityList) (res Result, err error) {
	st, err := src.open(keyring)
	if err != nil {
		return res, err
	}
	defer st.Close()
	res = newResult(st)
	m := st.Manifest
	raw, err := readRecord(src, st)
	if err != nil {
		return res, err
	}
	if present, err := im.present(ctx, m.Snapshot, raw); err != nil || present {
		res.Present = present
		return res, err
	}
	if err := im.checkBase(ctx, m); err != nil {
		return res, err
	}
	unlock, err := im.lock(ctx)
	if err != nil {
		return res, err
	}
	defer unlock()
	task := reporter(im.Progress).Task("import "+m.Snapshot, progress.Bytes, m.Bytes)
	defer func() { task.Done(err) }()
	if res.Written, err = im.blobs(ctx, src, st, task); err != nil {
		return res, err
	}
	_, err = im.Catalog.Adopt(ctx, raw)
	if errors.Is(err, snapshot.ErrExists) {
		// Imported meanwhile by another process: fine if identical.
		_, err = im.present(ctx, m.Snapshot, raw)
	}
	return res, err
}

// readRecord reads and checks the record entry, the first after the
// manifest.
func readRecord(src *Source, st *stream) ([]byte, error) {
	e, r, err := st.Next()
	if err != nil {
		return nil, src.explain(err, st.Manifest.PartSize)
	}
	raw, err := io.ReadAll(io.LimitReader(r, maxRecord+1))
	if err != nil {
		return nil, src.explain(err, st.Manifest.PartSize)
	}
	if _, err := recordOf(st.Manifest, e, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// checkBase refuses an incremental bundle whose base is absent.
func (im *Importer) checkBase(ctx context.Context, m *Manifest) error {
	if m.Base == "" {
		return nil
	}
	_, err := im.Catalog.Get(ctx, m.Base)
	if errors.Is(err, snapshot.ErrNotFound) {
		return fmt.Errorf("%w: bundle of %s is incremental on snapshot %s, which this store does not have: import the bundle of %s first: %w",
			ErrMissingBase, m.Snapshot, m.Base, m.Base, snapshot.ErrNotFound)
	}
	return err
}

// present reports whether the store has the snapshot already, and
// refuses a different record under the same ID.
func (im *Importer) present(ctx context.Context, id string, raw []byte) (bool, error) {
	have, err := im.Catalog.RawRecord(ctx, id)
	if errors.Is(err, snapshot.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if store.DigestOf(have) != store.DigestOf(raw) {
		return false, fmt.Errorf("%w: snapshot %s in this store differs from the bundle's (both made under one ID by different mirrords?)", ErrConflict, id)
	}
	return true, nil
}

// lock takes the sync lock (gc must not sweep blobs before their record
// exists) and recovers what a crashed writer left.
func (im *Importer) lock(ctx context.Context) (func(), error) {
	st := im.Catalog.Store()
	unlock, err := st.TryLock(ctx, snapshot.SyncLock)
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("a sync, gc or import is running on this store (%w): wait for it to finish and try again", err)
	}
	if err != nil {
		return nil, err
	}
	if r, ok := st.Blobs().(store.Recoverer); ok {
		if _, err := r.Recover(ctx); err != nil {
			unlock()
			return nil, err
		}
	}
	if _, err := st.Blobs().CleanTemp(ctx, 0); err != nil {
		unlock()
		return nil, fmt.Errorf("cleaning leftovers of interrupted writes: %w", err)
	}
	return unlock, nil
}

// Blobs up to smallBlob bytes are read into memory and stored by
// putWorkers goroutines, so file creation overlaps with decompression;
// larger ones stream straight into the store.
const (
	smallBlob  = 1 << 20
	putWorkers = 4
)

// blobs writes the stream's blobs. Put skips a blob that is present
// without reading it; those are hashed here instead, so every byte of the
// bundle is checked.
func (im *Importer) blobs(ctx context.Context, src *Source, st *stream, task progress.Task) (int, error) {
	var written atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(putWorkers)
	buf := make([]byte, 256<<10)
	err := src.read(gctx, st, func(e entry, r io.Reader) error {
		r = progressReader{r, task}
		if e.Size > smallBlob {
			return im.put(gctx, e, r, buf, &written)
		}
		data := make([]byte, e.Size)
		if _, err := io.ReadFull(r, data); err != nil {
			return err
		}
		where := src.where()
		g.Go(func() error {
			err := im.put(gctx, e, bytes.NewReader(data), nil, &written)
			if errors.Is(err, ErrCorrupt) && where != "" {
				err = fmt.Errorf("in %s: %w", where, err)
			}
			return err
		})
		return nil
	})
	if werr := g.Wait(); werr != nil {
		err = werr // the first failure; the stream stopped because of it
	}
	return int(written.Load()), err
}

// put stores one blob; buf is a copy buffer for hashing (nil: allocate).
func (im *Importer) put(ctx context.Context, e entry, r io.Reader, buf []byte, written *atomic.Int64) error {
	blobs := im.Catalog.Store().Blobs()
	cr := &countReader{r: r}
	if e.Size == 0 {
		if _, err := blobs.Stat(ctx, e.Digest); err == nil {
			return hashAll(cr, e, buf)
		}
	}
	if _, err := blobs.Put(ctx, cr, store.Expect{Digest: e.Digest, Size: e.Size}); err != nil {
		if errors.Is(err, store.ErrDigestMismatch) || errors.Is(err, store.ErrSizeMismatch) {
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, e, err)
		}
		return fmt.Errorf("storing %s: %w", e, err)
	}
	if cr.n == 0 && e.Size > 0 {
		return hashAll(cr, e, buf) // present already
	}
	written.Add(1)
	return nil
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func fingerprint(e *openpgp.Entity) string {
	if e == nil || e.PrimaryKey == nil {
		return ""
	}
	return fmt.Sprintf("%X", e.PrimaryKey.Fingerprint)
}
