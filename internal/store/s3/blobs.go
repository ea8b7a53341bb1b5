package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mirrord/mirrord/internal/store"
)

// errNotListed is a Stat miss answered by the presence filter.
var errNotListed = fmt.Errorf("not in the bucket's listing: %w", store.ErrNotFound)

// Blobs is the blob half of a Store. It implements store.Blobs.
type Blobs struct {
	s    *Store
	bufs sync.Pool // *[]byte of PartSize
	q    *behind   // small blobs being written behind (behind.go)

	// absent remembers digests Stat just found missing (digest → time),
	// so the Put that typically follows skips a second HEAD. A stale
	// entry costs at most one redundant upload of identical content.
	absent  sync.Map
	absentN atomic.Int64

	w writerLock // the presence filter while this process holds the writer lock (index.go)
}

// absentFor is how long a missing Stat lets Put skip its own check.
const absentFor = 10 * time.Second

var _ store.Syncer = (*Blobs)(nil)

// Store returns the store b belongs to.
func (b *Blobs) Store() *Store { return b.s }

func (b *Blobs) getBuf() *[]byte {
	if p, ok := b.bufs.Get().(*[]byte); ok {
		return p
	}
	buf := make([]byte, b.s.opt.PartSize)
	return &buf
}

// Stat implements store.Blobs.
func (b *Blobs) Stat(ctx context.Context, d store.Digest) (store.Info, error) {
	if _, err := store.ParseDigest(string(d)); err != nil {
		return store.Info{}, fmt.Errorf("stat: %w", err)
	}
	if qb, ok := b.q.get(d); ok {
		return qb.info, nil
	}
	key := b.s.l.blob(d)
	if p := b.w.current(); p != nil && !p.mayHave(d) {
		b.noteAbsent(d)
		return store.Info{}, b.s.wrap("stat", key, errNotListed)
	}
	out, err := b.s.c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b.s.opt.Bucket, Key: &key})
	if err != nil {
		err = b.s.wrap("stat", key, err)
		if store.IsNotExist(err) {
			b.noteAbsent(d)
		}
		return store.Info{}, err
	}
	return store.Info{Digest: d, Size: aws.ToInt64(out.ContentLength), ModTime: aws.ToTime(out.LastModified)}, nil
}

// Open implements store.Blobs. The blob reads with ranged GETs from its
// current offset, so Seek is cheap and Range requests fetch only what they
// need. Reads use ctx.
func (b *Blobs) Open(ctx context.Context, d store.Digest) (store.Blob, error) {
	if _, err := store.ParseDigest(string(d)); err == nil {
		if qb, ok := b.q.get(d); ok {
			return &memBlob{Reader: bytes.NewReader(qb.data), size: qb.info.Size}, nil
		}
	}
	info, err := b.Stat(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("open: %w", err)
	}
	return &blob{s: b.s, ctx: ctx, key: b.s.l.blob(d), size: info.Size}, nil
}

type blob struct {
	s      *Store
	ctx    context.Context
	key    string
	size   int64
	off    int64
	body   io.ReadCloser
	closed bool
}

func (o *blob) Size() int64 { return o.size }

func (o *blob) Read(p []byte) (int, error) {
	if o.closed {
		return 0, os.ErrClosed
	}
	if o.off >= o.size {
		return 0, io.EOF
	}
	if len(p) == 0 {
		return 0, nil
	}
	if o.body == nil {
		rng := fmt.Sprintf("bytes=%d-", o.off)
		out, err := o.s.c.GetObject(o.ctx, &s3.GetObjectInput{Bucket: &o.s.opt.Bucket, Key: &o.key, Range: &rng})
		if err != nil {
			return 0, o.s.wrap("read", o.key, err)
		}
		o.body = out.Body
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	switch {
	case errors.Is(err, io.EOF) && o.off < o.size:
		o.dropBody()
		return n, o.s.wrap("read", o.key, fmt.Errorf("object ended at %d of %d bytes: %w", o.off, o.size, io.ErrUnexpectedEOF))
	case errors.Is(err, io.EOF):
		o.dropBody()
		return n, io.EOF
	case err != nil:
		o.dropBody()
		return n, o.s.wrap("read", o.key, err)
	}
	return n, nil
}

func (o *blob) dropBody() {
	if o.body != nil {
		o.body.Close()
		o.body = nil
	}
}

func (o *blob) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.size + offset
	default:
		return 0, fmt.Errorf("seek %s: invalid whence %d", o.key, whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("seek %s: negative position %d", o.key, abs)
	}
	if abs != o.off {
		o.dropBody()
		o.off = abs
	}
	return abs, nil
}

func (o *blob) Close() error {
	o.dropBody()
	o.closed = true
	return nil
}

// List implements store.Blobs. Objects under blobs/ that are not named like
// a blob are skipped.
func (b *Blobs) List(ctx context.Context, fn func(store.Info) error) error {
	if err := b.q.wait(ctx); err != nil {
		return err
	}
	if err := b.q.failed(); err != nil {
		return fmt.Errorf("list: a blob put earlier did not reach the bucket: %w", err)
	}
	prefix := b.s.l.blobs()
	p := s3.NewListObjectsV2Paginator(b.s.c, &s3.ListObjectsV2Input{Bucket: &b.s.opt.Bucket, Prefix: &prefix})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return b.s.wrap("list", prefix, err)
		}
		for _, o := range page.Contents {
			d, ok := b.s.l.digestOf(aws.ToString(o.Key))
			if !ok {
				continue
			}
			if err := fn(store.Info{Digest: d, Size: aws.ToInt64(o.Size), ModTime: aws.ToTime(o.LastModified)}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete implements store.Blobs.
func (b *Blobs) Delete(ctx context.Context, d store.Digest) error {
	if _, err := store.ParseDigest(string(d)); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	if _, ok := b.q.get(d); ok {
		if err := b.q.wait(ctx); err != nil {
			return err
		}
	}
	key := b.s.l.blob(d)
	if _, err := b.s.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &b.s.opt.Bucket, Key: &key}); err != nil && !isNotFound(err) {
		return b.s.wrap("delete", key, err)
	}
	return nil
}

// CleanTemp implements store.Blobs: it aborts multipart uploads of blobs
// started more than age ago and removes stale local spool files.
func (b *Blobs) CleanTemp(ctx context.Context, age time.Duration) (int, error) {
	n, err := b.s.cleanSpool(age)
	if err != nil {
		return n, err
	}
	prefix := b.s.l.blobs()
	cutoff := time.Now().Add(-age)
	in := &s3.ListMultipartUploadsInput{Bucket: &b.s.opt.Bucket, Prefix: &prefix}
	for {
		out, err := b.s.c.ListMultipartUploads(ctx, in)
		if err != nil {
			return n, b.s.wrap("list multipart uploads under", prefix, err)
		}
		for _, u := range out.Uploads {
			if aws.ToTime(u.Initiated).After(cutoff) {
				continue
			}
			_, err := b.s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &b.s.opt.Bucket, Key: u.Key, UploadId: u.UploadId})
			if err != nil && !isNotFound(err) {
				return n, b.s.wrap("abort multipart upload", aws.ToString(u.Key), err)
			}
			n++
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// PresignGet returns a URL that GETs blob d without credentials until ttl
// has passed.
func (s *Store) PresignGet(ctx context.Context, d store.Digest, ttl time.Duration) (string, error) {
	if _, err := store.ParseDigest(string(d)); err != nil {
		return "", fmt.Errorf("presign: %w", err)
	}
	key := s.l.blob(d)
	req, err := s3.NewPresignClient(s.c, s3.WithPresignExpires(ttl)).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: &s.opt.Bucket, Key: &key})
	if err != nil {
		return "", s.wrap("presign", key, err)
	}
	return req.URL, nil
}
