package bundle

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// Exporter writes bundles of a catalog's snapshots.
type Exporter struct {
	Catalog  *snapshot.Catalog
	Key      *signing.Key
	Progress progress.Reporter // nil reports nothing
}

// ExportOptions select what a bundle holds and how it is cut.
type ExportOptions struct {
	// Since is the base snapshot: blobs it needs are left out, and the
	// importer must have it.
	Since string
	// PartSize is recorded in the manifest for split bundles (the
	// caller's writer does the splitting); 0 for one file or a stream.
	PartSize int64
}

// Plan builds and signs the manifest of snapshot id's bundle. It reads
// trees only, no file content.
func (x *Exporter) Plan(ctx context.Context, id string, opt ExportOptions) (*Manifest, error) {
	rec, err := x.Catalog.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	raw, err := x.Catalog.RawRecord(ctx, id)
	if err != nil {
		return nil, err
	}
	need, err := x.Catalog.BlobsOf(ctx, rec)
	if err != nil {
		return nil, err
	}
	if opt.Since != "" {
		if opt.Since == id {
			return nil, fmt.Errorf("export %s --since %s: a snapshot cannot be its own base", id, id)
		}
		need, err = x.without(ctx, need, opt.Since)
		if err != nil {
			return nil, err
		}
	}
	m := &Manifest{
		Format: Format, Snapshot: id, Base: opt.Since, Created: time.Now().UTC(),
		Signer: x.Key.Fingerprint(), PartSize: opt.PartSize,
		Records: []Item{{Digest: store.DigestOf(raw), Size: int64(len(raw)), Ref: id}},
		Blobs:   make([]Item, len(need)),
	}
	for i, b := range need {
		m.Blobs[i] = Item{Digest: b.Digest, Size: b.Size, Ref: b.Ref}
		m.Bytes += b.Size
	}
	return m, nil
}

// without drops the blobs base needs from need.
func (x *Exporter) without(ctx context.Context, need []snapshot.BlobRef, base string) ([]snapshot.BlobRef, error) {
	brec, err := x.Catalog.Get(ctx, base)
	if err != nil {
		return nil, fmt.Errorf("base snapshot: %w", err)
	}
	have, err := x.Catalog.BlobsOf(ctx, brec)
	if err != nil {
		return nil, err
	}
	has := make(map[store.Digest]bool, len(have))
	for _, b := range have {
		has[b.Digest] = true
	}
	out := need[:0]
	for _, b := range need {
		if !has[b.Digest] {
			out = append(out, b)
		}
	}
	return out, nil
}

// Export streams snapshot id's bundle (incremental on since, when not
// empty) to w, as one stream. Errors found while planning (unknown
// snapshot or base: snapshot.ErrNotFound) come before the first byte.
func (x *Exporter) Export(ctx context.Context, w io.Writer, id, since string) error {
	m, err := x.Plan(ctx, id, ExportOptions{Since: since})
	if err != nil {
		return err
	}
	return x.Write(ctx, w, m)
}

// Write streams the bundle of m (from Plan) to w: it never holds more
// than one blob's copy buffer in memory. Progress is reported in bytes of
// blob content.
func (x *Exporter) Write(ctx context.Context, w io.Writer, m *Manifest) (err error) {
	manifest, err := m.encode()
	if err != nil {
		return err
	}
	sig, err := x.Key.DetachSign(manifest)
	if err != nil {
		return fmt.Errorf("signing the manifest: %w", err)
	}
	raw, err := x.Catalog.RawRecord(ctx, m.Snapshot)
	if err != nil {
		return err
	}
	if store.DigestOf(raw) != m.Records[0].Digest {
		return fmt.Errorf("snapshot %s: record changed since the manifest was made", m.Snapshot)
	}
	task := reporter(x.Progress).Task("export "+m.Snapshot, progress.Bytes, m.Bytes)
	defer func() { task.Done(err) }()
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return err
	}
	defer zw.Close()
	tw := tar.NewWriter(zw)
	mtime := m.Created.Truncate(time.Second)
	for _, f := range []struct {
		name string
		data []byte
	}{{manifestName, manifest}, {signatureName, sig}, {recordsDir + m.Snapshot + ".json", raw}} {
		if err := writeEntry(tw, f.name, int64(len(f.data)), mtime, bytes.NewReader(f.data)); err != nil {
			return err
		}
	}
	buf := make([]byte, 256<<10)
	for _, it := range m.Blobs {
		if err := x.writeBlob(ctx, tw, it, mtime, buf, task); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("finishing the bundle: %w", err)
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("finishing the bundle: %w", err)
	}
	return nil
}

func (x *Exporter) writeBlob(ctx context.Context, tw *tar.Writer, it Item, mtime time.Time, buf []byte, task progress.Task) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b, err := x.Catalog.Store().Blobs().Open(ctx, it.Digest)
	if err != nil {
		return fmt.Errorf("export: %s: %w", it.Ref, err)
	}
	defer b.Close()
	if b.Size() != it.Size {
		return fmt.Errorf("export: %s: blob %s has %d bytes, the tree says %d (run mirrord verify): %w", it.Ref, it.Digest, b.Size(), it.Size, store.ErrSizeMismatch)
	}
	hdr := header(blobsDir+string(it.Digest), it.Size, mtime)
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing the bundle: %w", err)
	}
	n, err := io.CopyBuffer(tw, progressReader{b, task}, buf)
	if err != nil {
		return fmt.Errorf("export: %s: after %d bytes: %w", it.Ref, n, err)
	}
	return nil
}

func writeEntry(tw *tar.Writer, name string, size int64, mtime time.Time, r io.Reader) error {
	if err := tw.WriteHeader(header(name, size, mtime)); err != nil {
		return fmt.Errorf("writing the bundle: %w", err)
	}
	if _, err := io.Copy(tw, r); err != nil {
		return fmt.Errorf("writing the bundle: %s: %w", name, err)
	}
	return nil
}

func header(name string, size int64, mtime time.Time) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o444, ModTime: mtime}
}

type progressReader struct {
	r    io.Reader
	task progress.Task
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.task.Add(int64(n))
	p.task.Fetched(int64(n)) // bytes really moved: they make the rate
	return n, err
}

func reporter(r progress.Reporter) progress.Reporter {
	if r == nil {
		return progress.Discard()
	}
	return r
}
