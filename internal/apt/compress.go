package apt

import (
	"compress/bzip2"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/mirrord/mirrord/internal/store"
)

// readSuffixes are the index compressions mirrord reads, in order of
// preference when two variants have the same size.
var readSuffixes = []string{".xz", ".zst", ".bz2", ".gz", ""}

// publishSuffixes are the compressions every published Packages/Sources
// index is served in (plus plain when the upstream lists it).
var publishSuffixes = []string{".xz", ".gz"}

// decompress returns the decompressed stream of r, compressed as suffix
// says. Reading more than limit decompressed bytes fails with an error
// wrapping store.ErrTooLarge.
func decompress(r io.Reader, suffix string, limit int64) (io.ReadCloser, error) {
	var d io.ReadCloser
	switch suffix {
	case "":
		d = io.NopCloser(r)
	case ".gz":
		z, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		d = z
	case ".xz":
		z, err := xz.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		d = io.NopCloser(z)
	case ".bz2":
		d = io.NopCloser(bzip2.NewReader(r))
	case ".zst":
		z, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxWindow(128<<20))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		d = z.IOReadCloser()
	default:
		return nil, fmt.Errorf("unsupported compression %q", suffix)
	}
	return &capped{r: d, c: d, limit: limit, suffix: suffix}, nil
}

// capped stops a decompressed stream at limit bytes (a decompression bomb
// must not fill the disk or the memory) and names the compression in
// decoding errors.
type capped struct {
	r      io.Reader
	c      io.Closer
	n      int64
	limit  int64
	suffix string
}

func (c *capped) Read(p []byte) (int, error) {
	if c.n > c.limit {
		return 0, c.tooLarge()
	}
	if rest := c.limit + 1 - c.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return n - int(c.n-c.limit), c.tooLarge()
	}
	if err != nil && err != io.EOF {
		what := c.suffix
		if what == "" {
			what = "plain"
		}
		return n, fmt.Errorf("decompressing %s data after %d bytes: %w (the file is truncated or corrupt although its checksum matches the signed Release: the upstream published a broken index; retry later or report it upstream)", what, c.n, err)
	}
	return n, err
}

func (c *capped) tooLarge() error {
	return fmt.Errorf("decompresses to more than %d bytes (a compression bomb, or an index far larger than any real one): %w", c.limit, store.ErrTooLarge)
}

func (c *capped) Close() error { return c.c.Close() }

// compressor returns a writer compressing into w as suffix says, with
// fixed settings and no timestamps, so equal input gives equal output.
func compressor(w io.Writer, suffix string) (io.WriteCloser, error) {
	switch suffix {
	case "":
		return nopWriteCloser{w}, nil
	case ".gz":
		return gzip.NewWriterLevel(w, gzip.BestCompression)
	case ".xz":
		return xz.WriterConfig{DictCap: 8 << 20, CheckSum: xz.CRC64}.NewWriter(w)
	}
	return nil, fmt.Errorf("cannot publish compression %q", suffix)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
