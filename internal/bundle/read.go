package bundle

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/klauspost/compress/zstd"

	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/store"
)

// stream is an open bundle whose manifest signature has been accepted.
type stream struct {
	zr       *zstd.Decoder
	tr       *tar.Reader
	Manifest *Manifest
	Signer   *openpgp.Entity
	entries  []entry
	next     int
}

// openStream reads the manifest and its signature from r and checks the
// signature against keyring before anything else is read.
func openStream(r io.Reader, keyring openpgp.EntityList) (*stream, error) {
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<27))
	if err != nil {
		return nil, err
	}
	s := &stream{zr: zr, tr: tar.NewReader(zr)}
	manifest, err := s.small(manifestName, maxManifest)
	if err != nil {
		zr.Close()
		return nil, err
	}
	sig, err := s.small(signatureName, maxSignature)
	if err != nil {
		zr.Close()
		return nil, err
	}
	signer, err := signing.VerifyDetached(keyring, manifest, sig)
	if err != nil {
		zr.Close()
		return nil, fmt.Errorf("%w: %w", ErrSignature, err)
	}
	m, err := decodeManifest(manifest)
	if err != nil {
		zr.Close()
		return nil, err
	}
	s.Manifest, s.Signer, s.entries = m, signer, m.entries()
	return s, nil
}

func (s *stream) Close() { s.zr.Close() }

// small reads the next entry, which must be called name, into memory.
func (s *stream) small(name string, limit int64) ([]byte, error) {
	h, err := s.tr.Next()
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrCorrupt, name, unexpected(err))
	}
	if h.Name != name || h.Typeflag != tar.TypeReg {
		return nil, fmt.Errorf("%w: want entry %s, found %q (not a mirrord bundle?)", ErrCorrupt, name, h.Name)
	}
	if h.Size > limit {
		return nil, fmt.Errorf("%w: %s has %d bytes, more than the limit %d", ErrCorrupt, name, h.Size, limit)
	}
	// Not sized by the header: nothing is trusted before the signature.
	data, err := io.ReadAll(io.LimitReader(s.tr, limit))
	if err == nil && int64(len(data)) != h.Size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading %s: %w", ErrCorrupt, name, unexpected(err))
	}
	return data, nil
}

// unexpected reports a stream that ends inside the tar as truncated.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// Next returns the next entry of the manifest and a reader of exactly its
// bytes, or io.EOF after the last one once the stream has been checked to
// end there. The caller must check the content's digest (Verified).
func (s *stream) Next() (entry, io.Reader, error) {
	if s.next == len(s.entries) {
		return entry{}, nil, s.finish()
	}
	e := s.entries[s.next]
	s.next++
	h, err := s.tr.Next()
	if err != nil {
		return e, nil, fmt.Errorf("%w: reading %s: %w", ErrCorrupt, e, unexpected(err))
	}
	if h.Name != e.name || h.Typeflag != tar.TypeReg {
		return e, nil, fmt.Errorf("%w: entry %d is %q, the manifest says %s", ErrCorrupt, s.next+1, h.Name, e.name)
	}
	if h.Size != e.Size {
		return e, nil, fmt.Errorf("%w: %s: entry has %d bytes, the manifest says %d", ErrCorrupt, e, h.Size, e.Size)
	}
	return e, &truncReader{r: s.tr, e: e}, nil
}

// finish checks that nothing follows the last entry and that the
// compressed stream is intact to its end (zstd's frame checksum).
func (s *stream) finish() error {
	h, err := s.tr.Next()
	if err == nil {
		return fmt.Errorf("%w: entry %q is not in the manifest", ErrCorrupt, h.Name)
	}
	if !errors.Is(err, io.EOF) {
		return fmt.Errorf("%w: after the last entry: %w", ErrCorrupt, unexpected(err))
	}
	if _, err := io.Copy(io.Discard, s.zr); err != nil {
		return fmt.Errorf("%w: after the last entry: %w", ErrCorrupt, err)
	}
	return io.EOF
}

// truncReader reports a short entry as ErrUnexpectedEOF naming it.
type truncReader struct {
	r io.Reader
	e entry
}

func (t *truncReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = fmt.Errorf("%w: reading %s: %w", ErrCorrupt, t.e, unexpected(err))
	}
	return n, err
}

// hashAll reads r to its end and checks it against e.
func hashAll(r io.Reader, e entry, buf []byte) error {
	if buf == nil {
		buf = make([]byte, 64<<10)
	}
	h := sha256.New()
	n, err := io.CopyBuffer(h, r, buf)
	if err != nil {
		return err
	}
	return check(e, store.Digest(hex.EncodeToString(h.Sum(nil))), n)
}

func check(e entry, got store.Digest, n int64) error {
	if n != e.Size {
		return fmt.Errorf("%w: %s: %d bytes, the manifest says %d: %w", ErrCorrupt, e, n, e.Size, store.ErrSizeMismatch)
	}
	if got != e.Digest {
		return fmt.Errorf("%w: %s: content hashes to %s: %w", ErrCorrupt, e, got, store.ErrDigestMismatch)
	}
	return nil
}

// Source opens a bundle for reading: "-" is r (stdin), FILE a single-file
// bundle, FILE.000 or a FILE with only parts on disk a split one.
type Source struct {
	Name  string
	r     io.Reader
	parts *partReader
	close func() error
}

// Open opens the bundle name; stdin is used for "-".
func Open(name string, stdin io.Reader) (*Source, error) {
	if name == "-" {
		return &Source{Name: "stdin", r: stdin, close: func() error { return nil }}, nil
	}
	base, isPart := strings.CutSuffix(name, ".000")
	if !isPart {
		f, err := os.Open(name)
		if err == nil {
			return &Source{Name: name, r: f, close: f.Close}, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if _, serr := os.Stat(PartName(name, 0)); serr != nil {
			return nil, fmt.Errorf("bundle %s: %w (and no split part %s)", name, err, PartName(name, 0))
		}
		base = name
	}
	p, err := openParts(base)
	if err != nil {
		return nil, err
	}
	return &Source{Name: base, r: p, parts: p, close: p.Close}, nil
}

// Close closes the underlying file(s).
func (s *Source) Close() error { return s.close() }

// open reads the source's manifest (checking its signature) and, for
// split bundles, the layout of its parts.
func (s *Source) open(keyring openpgp.EntityList) (*stream, error) {
	st, err := openStream(s.r, keyring)
	if err != nil {
		return nil, s.explain(err, 0)
	}
	if s.parts != nil {
		if err := s.parts.checkPartSize(st.Manifest.PartSize); err != nil {
			st.Close()
			return nil, err
		}
	}
	return st, nil
}

func (s *Source) explain(err error, partSize int64) error {
	if s.parts == nil || err == nil {
		return err
	}
	return s.parts.explain(err, partSize)
}

// where names the part(s) the entry just read came from ("" when the
// bundle is not split).
func (s *Source) where() string {
	if s.parts == nil {
		return ""
	}
	return s.parts.span()
}

// read runs fn on every entry after the manifest, in order.
func (s *Source) read(ctx context.Context, st *stream, fn func(entry, io.Reader) error) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		if s.parts != nil {
			s.parts.mark()
		}
		e, r, err := st.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err == nil {
			err = fn(e, r)
		}
		if err != nil {
			return s.explain(err, st.Manifest.PartSize)
		}
	}
}
