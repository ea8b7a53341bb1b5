package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/mirrord/mirrord/internal/store"
)

// Put implements store.Blobs (see the package comment for how).
func (b *Blobs) Put(ctx context.Context, r io.Reader, exp store.Expect) (store.Info, error) {
	info, err := b.put(ctx, r, exp)
	if err == nil {
		if p := b.w.current(); p != nil {
			p.add(info.Digest)
		}
	}
	return info, err
}

func (b *Blobs) put(ctx context.Context, r io.Reader, exp store.Expect) (store.Info, error) {
	limit, err := checkExpect(exp)
	if err != nil {
		return store.Info{}, err
	}
	if exp.Digest != "" && !b.justAbsent(exp.Digest) {
		info, ok, err := b.present(ctx, exp.Digest, exp.Size)
		if ok || err != nil {
			return info, err
		}
	}
	v := newVerifier(ctx, r, exp, limit)
	opt := b.s.opt
	if exp.Digest != "" && exp.Size > opt.PartSize && exp.Size <= opt.MultipartThreshold {
		return b.putStream(ctx, v, exp)
	}
	bp := b.getBuf()
	defer b.bufs.Put(bp)
	first := (*bp)[:min(opt.PartSize, v.cap+1)]
	n, err := io.ReadFull(v, first)
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		info, err := v.finish()
		if err != nil {
			return store.Info{}, err
		}
		if exp.Digest == "" {
			if got, ok, err := b.present(ctx, info.Digest, info.Size); ok || err != nil {
				return got, err
			}
		}
		if err := b.q.enqueue(ctx, info, first[:n], b.putBytesErr); err != nil {
			return store.Info{}, err
		}
		return info, nil
	case err != nil:
		return store.Info{}, v.fail(err)
	case exp.Digest != "":
		return b.putMultipartStream(ctx, v, *bp, n)
	}
	return b.putSpooled(ctx, v, first[:n])
}

// justAbsent reports (once) whether Stat found d missing moments ago and it
// is not queued.
func (b *Blobs) justAbsent(d store.Digest) bool {
	t, ok := b.absent.LoadAndDelete(d)
	if !ok {
		return false
	}
	b.absentN.Add(-1)
	if _, queued := b.q.get(d); queued {
		return false
	}
	return time.Since(t.(time.Time)) < absentFor
}

func (b *Blobs) noteAbsent(d store.Digest) {
	if b.absentN.Load() > 100_000 { // Stats never followed by a Put
		b.absent.Clear()
		b.absentN.Store(0)
	}
	if _, loaded := b.absent.Swap(d, time.Now()); !loaded {
		b.absentN.Add(1)
	}
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

// present reports the info of blob d if it is stored already.
func (b *Blobs) present(ctx context.Context, d store.Digest, wantSize int64) (store.Info, bool, error) {
	info, err := b.Stat(ctx, d)
	switch {
	case store.IsNotExist(err):
		return store.Info{}, false, nil
	case err != nil:
		return store.Info{}, false, fmt.Errorf("put %s: %w", d, err)
	case wantSize > 0 && info.Size != wantSize:
		return store.Info{}, false, fmt.Errorf("put %s: expected %d bytes, stored blob has %d: %w", d, wantSize, info.Size, store.ErrSizeMismatch)
	}
	return info, true, nil
}

// verifier hashes and counts what is read through it, failing once more
// than cap bytes arrive; finish checks the result against exp. It never
// reads more than cap+1 bytes from r.
type verifier struct {
	ctx   context.Context
	r     io.Reader
	h     hash.Hash
	n     int64
	cap   int64
	limit int64
	exp   store.Expect
	err   error // the first failure, kept for callers that only see the SDK's error
}

func newVerifier(ctx context.Context, r io.Reader, exp store.Expect, limit int64) *verifier {
	c := limit
	if exp.Size > 0 {
		c = min(c, exp.Size)
	}
	return &verifier{ctx: ctx, r: r, h: sha256.New(), cap: c, limit: limit, exp: exp}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if err := v.ctx.Err(); err != nil {
		return 0, v.fail(err)
	}
	if room := v.cap + 1 - v.n; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	v.n += int64(n)
	switch {
	case v.n > v.cap && v.exp.Size > 0 && v.exp.Size <= v.limit:
		return n, v.fail(fmt.Errorf("put %s: more than the expected %d bytes: %w", v.exp.Digest, v.exp.Size, store.ErrSizeMismatch))
	case v.n > v.cap:
		return n, v.fail(fmt.Errorf("put %s: more than %d bytes: %w", v.exp.Digest, v.limit, store.ErrTooLarge))
	case err != nil && !errors.Is(err, io.EOF):
		return n, v.fail(fmt.Errorf("put %s: reading content: %w", v.exp.Digest, err))
	}
	return n, err
}

func (v *verifier) fail(err error) error {
	if v.err == nil {
		v.err = err
	}
	return v.err
}

// finish checks size and digest once the stream has ended.
func (v *verifier) finish() (store.Info, error) {
	if v.err != nil {
		return store.Info{}, v.err
	}
	d := store.Digest(hex.EncodeToString(v.h.Sum(nil)))
	if v.exp.Size > 0 && v.n != v.exp.Size {
		return store.Info{}, v.fail(fmt.Errorf("put %s: got %d bytes, expected %d: %w", v.exp.Digest, v.n, v.exp.Size, store.ErrSizeMismatch))
	}
	if v.exp.Digest != "" && d != v.exp.Digest {
		return store.Info{}, v.fail(fmt.Errorf("put: content has sha256 %s, expected %s: %w", d, v.exp.Digest, store.ErrDigestMismatch))
	}
	return store.Info{Digest: d, Size: v.n, ModTime: time.Now()}, nil
}

// withPayloadHash signs a request with a payload sha256 the caller knows,
// so the SDK neither reads the body to hash it nor needs it seekable.
func withPayloadHash(hexSum string) func(*s3.Options) {
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Add(middleware.FinalizeMiddlewareFunc("mirrordPayloadHash",
				func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
					return next.HandleFinalize(v4.SetPayloadHash(ctx, hexSum), in)
				}), middleware.Before)
		})
	}
}

func checksumOf(d store.Digest) *string {
	raw, _ := hex.DecodeString(string(d))
	return aws.String(base64.StdEncoding.EncodeToString(raw))
}

// putBytes uploads a verified in-memory blob in one request.
func (b *Blobs) putBytes(ctx context.Context, info store.Info, data []byte) (store.Info, error) {
	key := b.s.l.blob(info.Digest)
	_, err := b.s.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &b.s.opt.Bucket, Key: &key, Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))), ChecksumSHA256: checksumOf(info.Digest),
	}, withPayloadHash(string(info.Digest)))
	if err != nil {
		return store.Info{}, b.s.wrap("put", key, ctxErr(ctx, err))
	}
	return info, nil
}

func (b *Blobs) putBytesErr(ctx context.Context, info store.Info, data []byte) error {
	_, err := b.putBytes(ctx, info, data)
	return err
}

// ctxErr prefers ctx's error, so callers can errors.Is it.
func ctxErr(ctx context.Context, err error) error {
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		return fmt.Errorf("%w: %w", cerr, err)
	}
	return err
}

// putStream streams a blob of known digest and size to its final key in one
// request; holdBack keeps the last bytes back until the stream is verified.
func (b *Blobs) putStream(ctx context.Context, v *verifier, exp store.Expect) (store.Info, error) {
	key := b.s.l.blob(exp.Digest)
	body := &holdBack{v: v, size: exp.Size}
	_, err := b.s.c.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &b.s.opt.Bucket, Key: &key, Body: body,
		ContentLength: aws.Int64(exp.Size), ChecksumSHA256: checksumOf(exp.Digest),
	}, withPayloadHash(string(exp.Digest)))
	if v.err != nil {
		return store.Info{}, v.err
	}
	if err != nil {
		return store.Info{}, b.s.wrap("put", key, ctxErr(ctx, mapChecksumErr(err)))
	}
	return v.finish()
}

// mapChecksumErr marks the server's refusal of content whose hash differs
// from the signed one as a digest mismatch.
func mapChecksumErr(err error) error {
	for _, code := range []string{"XAmzContentSHA256Mismatch", "BadDigest", "InvalidDigest"} {
		if hasCode(err, code) {
			return fmt.Errorf("%w: %w", store.ErrDigestMismatch, err)
		}
	}
	return err
}

// holdBack reads exactly size bytes from v, withholding the final chunk
// until v has seen the end of its stream and verified it: an HTTP request
// whose body fails before Content-Length bytes is never completed.
type holdBack struct {
	v    *verifier
	size int64
	sent int64
}

func (h *holdBack) Read(p []byte) (int, error) {
	if h.sent == h.size {
		return 0, io.EOF
	}
	if room := h.size - h.sent; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := h.v.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, err
	}
	h.sent += int64(n)
	if h.sent < h.size {
		if errors.Is(err, io.EOF) {
			h.v.finish() // records the size mismatch
			return 0, h.v.err
		}
		return n, nil
	}
	var probe [1]byte
	if _, err := h.v.Read(probe[:]); !errors.Is(err, io.EOF) {
		if err == nil {
			err = h.v.fail(fmt.Errorf("put %s: more than the expected %d bytes: %w", h.v.exp.Digest, h.size, store.ErrSizeMismatch))
		}
		return 0, err
	}
	if _, err := h.v.finish(); err != nil {
		return 0, err
	}
	return n, nil
}

// putMultipartStream uploads a blob of known digest from r in parts read
// into buf (whose first n bytes are read already), completing the upload
// only when the whole stream matched.
func (b *Blobs) putMultipartStream(ctx context.Context, v *verifier, buf []byte, n int) (store.Info, error) {
	mp, err := b.startMultipart(ctx, v.exp.Digest)
	if err != nil {
		return store.Info{}, err
	}
	ok := false
	defer func() {
		if !ok {
			mp.abort()
		}
	}()
	for {
		if err := mp.part(ctx, bytes.NewReader(buf[:n]), int64(n)); err != nil {
			return store.Info{}, err
		}
		n, err = io.ReadFull(v, buf)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return store.Info{}, v.fail(err)
		}
	}
	if n > 0 {
		if err := mp.part(ctx, bytes.NewReader(buf[:n]), int64(n)); err != nil {
			return store.Info{}, err
		}
	}
	info, err := v.finish()
	if err != nil {
		return store.Info{}, err
	}
	if err := mp.complete(ctx); err != nil {
		return store.Info{}, err
	}
	ok = true
	return info, nil
}

// putSpooled writes first and the rest of v to a local spool file, then
// uploads the verified file.
func (b *Blobs) putSpooled(ctx context.Context, v *verifier, first []byte) (store.Info, error) {
	f, err := b.s.createSpool()
	if err != nil {
		return store.Info{}, err
	}
	defer func() {
		f.Close()
		os.Remove(f.Name())
	}()
	if _, err := f.Write(first); err != nil {
		return store.Info{}, fmt.Errorf("put: spool %s: %w", f.Name(), err)
	}
	if _, err := io.Copy(f, v); err != nil {
		if v.err != nil {
			return store.Info{}, v.err
		}
		return store.Info{}, fmt.Errorf("put: spool %s: %w", f.Name(), err)
	}
	info, err := v.finish()
	if err != nil {
		return store.Info{}, err
	}
	if got, ok, err := b.present(ctx, info.Digest, info.Size); ok || err != nil {
		return got, err
	}
	if info.Size <= b.s.opt.MultipartThreshold {
		key := b.s.l.blob(info.Digest)
		_, err := b.s.c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &b.s.opt.Bucket, Key: &key, Body: io.NewSectionReader(f, 0, info.Size),
			ContentLength: aws.Int64(info.Size), ChecksumSHA256: checksumOf(info.Digest),
		}, withPayloadHash(string(info.Digest)))
		if err != nil {
			return store.Info{}, b.s.wrap("put", key, ctxErr(ctx, err))
		}
		return info, nil
	}
	return info, b.putFileMultipart(ctx, f, info)
}

func (b *Blobs) putFileMultipart(ctx context.Context, f *os.File, info store.Info) error {
	mp, err := b.startMultipart(ctx, info.Digest)
	if err != nil {
		return err
	}
	ps := b.s.opt.PartSize
	for off := int64(0); off < info.Size; off += ps {
		n := min(ps, info.Size-off)
		if err := mp.part(ctx, io.NewSectionReader(f, off, n), n); err != nil {
			mp.abort()
			return err
		}
	}
	if err := mp.complete(ctx); err != nil {
		mp.abort()
		return err
	}
	return nil
}

// multipart is one multipart upload to a blob's key.
type multipart struct {
	b     *Blobs
	key   string
	id    *string
	parts []types.CompletedPart
}

func (b *Blobs) startMultipart(ctx context.Context, d store.Digest) (*multipart, error) {
	key := b.s.l.blob(d)
	out, err := b.s.c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b.s.opt.Bucket, Key: &key})
	if err != nil {
		return nil, b.s.wrap("start multipart upload", key, ctxErr(ctx, err))
	}
	return &multipart{b: b, key: key, id: out.UploadId}, nil
}

// part uploads the next part; the SDK hashes the (seekable) body for the
// signature, which the server checks.
func (m *multipart) part(ctx context.Context, r io.ReadSeeker, n int64) error {
	num := int32(len(m.parts) + 1)
	out, err := m.b.s.c.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &m.b.s.opt.Bucket, Key: &m.key, UploadId: m.id, PartNumber: &num,
		Body: r, ContentLength: aws.Int64(n),
	})
	if err != nil {
		return m.b.s.wrap(fmt.Sprintf("upload part %d of", num), m.key, ctxErr(ctx, err))
	}
	m.parts = append(m.parts, types.CompletedPart{ETag: out.ETag, PartNumber: &num})
	return nil
}

func (m *multipart) complete(ctx context.Context) error {
	_, err := m.b.s.c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &m.b.s.opt.Bucket, Key: &m.key, UploadId: m.id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: m.parts},
	})
	if err != nil {
		return m.b.s.wrap("complete multipart upload", m.key, ctxErr(ctx, err))
	}
	return nil
}

// abort cancels the upload, even when the Put's ctx has ended.
func (m *multipart) abort() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := m.b.s.c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &m.b.s.opt.Bucket, Key: &m.key, UploadId: m.id})
	if err != nil && !isNotFound(err) {
		m.b.s.log.Warn("could not abort multipart upload; gc's CleanTemp will", "key", m.key, "err", err)
	}
}
