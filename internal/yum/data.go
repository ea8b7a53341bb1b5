package yum

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/store"
)

// dataFile is a metadata file listed in repomd.xml, mirrored and verified.
type dataFile struct {
	entry dataEntry
	path  string // in the tree
	url   string
	info  store.Info
}

func (df *dataFile) what() string { return df.entry.Type + " metadata" }

// needed reports whether a metadata type is mirrored: every type when
// verbatim; for a filtered publish only what the new metadata is built
// from (the rest describes the full repository and is not published).
func (r *run) needed(typ string) bool {
	if !r.s.filtered() {
		return true
	}
	switch typ {
	case "primary", "filelists", "other", "updateinfo", "modules":
		return true
	}
	return strings.HasPrefix(typ, "group")
}

// locateData resolves where each needed data file is.
func (r *run) locateData(md *repomd) ([]*dataFile, error) {
	var out []*dataFile
	for _, e := range md.Data {
		if !r.needed(e.Type) {
			continue
		}
		rel, u, err := r.s.up.locate(e.Href, e.Base)
		if err != nil {
			return nil, fmt.Errorf("repomd.xml, %s metadata: %w", e.Type, err)
		}
		if e.Base != "" && !r.s.filtered() {
			return nil, verbatimBaseErr(e.Type+" metadata", e.Base)
		}
		out = append(out, &dataFile{entry: e, path: rel, url: u})
	}
	return out, nil
}

// verbatimBaseErr: upstream's own metadata would send clients to xml:base.
func verbatimBaseErr(what, base string) error {
	return fmt.Errorf("%w: %s has xml:base %q: served verbatim, clients would fetch it from there instead of from the mirror; set verbatim: false so mirrord rewrites the locations", ErrUnsafeLocation, what, base)
}

// metadata is the data files of the pinned repomd.xml: primary is read
// first, the others are mirrored and verified in the background while
// packages download.
type metadata struct {
	files map[string]*dataFile // by type
	pkgs  []*pkg               // from primary, in order
	wait  func() error         // waits for the other files; idempotent
	abort func()               // cancels and waits for them
}

// fetchMetadata mirrors and verifies primary.xml, parsing it, and starts
// mirroring every other needed data file. The caller must call wait (to
// use those files and learn their errors) or abort.
func (r *run) fetchMetadata(ctx context.Context, md *repomd) (*metadata, error) {
	files, err := r.locateData(md)
	if err != nil {
		return nil, err
	}
	m := &metadata{files: map[string]*dataFile{}}
	for _, df := range files {
		m.files[df.entry.Type] = df
	}
	task := r.env.Progress.Task("yum/"+r.s.opt.Name+" metadata", progress.Items("files"), int64(len(files)))
	bg, cancel := context.WithCancel(fetch.WithProgress(ctx, task.Fetched))
	g, gctx := errgroup.WithContext(bg)
	g.SetLimit(3)
	for _, df := range files {
		if df.entry.Type != "primary" {
			g.Go(func() error {
				err := r.fetchData(gctx, df, nil)
				task.Add(1)
				return err
			})
		}
	}
	var once sync.Once
	var werr error
	m.wait = func() error {
		once.Do(func() {
			werr = g.Wait()
			cancel()
			task.Done(werr)
		})
		return werr
	}
	m.abort = func() {
		cancel()
		m.wait()
	}
	if err := r.readPrimary(ctx, m); err != nil {
		m.abort()
		return nil, err
	}
	task.Add(1)
	return m, nil
}

// readPrimary mirrors primary.xml and parses its packages into m.pkgs.
func (r *run) readPrimary(ctx context.Context, m *metadata) error {
	withDeps := r.s.filtered() && r.s.opt.FilterWithDeps
	return r.fetchData(ctx, m.files["primary"], func(rd io.Reader) error {
		return parsePrimary(rd, withDeps, func(p *pkg) error {
			m.pkgs = append(m.pkgs, p)
			return nil
		})
	})
}

// fetchData downloads one data file (checksum and size from repomd.xml),
// then checks what is inside: the open-checksum and open-size after
// decompression, or a zchunk file's header checksum. consume, if set,
// reads the decompressed content on the way (primary.xml's parser).
func (r *run) fetchData(ctx context.Context, df *dataFile, consume func(io.Reader) error) error {
	e := df.entry
	info, _, err := r.download(ctx, want{what: df.what(), path: df.path, url: df.url, sum: e.Checksum, size: e.Size, max: maxMetadataSize})
	if err != nil {
		return err
	}
	df.info = info
	if codecByName(df.path) == zck {
		if consume != nil {
			return fmt.Errorf("%s %s: %w: only zchunk metadata; mirrord cannot read zchunk", df.what(), df.url, ErrBadMetadata)
		}
		return r.checkZchunkHeader(ctx, df)
	}
	if e.OpenChecksum == nil && e.OpenSize == 0 && consume == nil {
		return nil
	}
	return r.checkOpen(ctx, df, consume)
}

// checkOpen decompresses a stored data file, checking open-checksum and
// open-size, and feeds it to consume when set.
func (r *run) checkOpen(ctx context.Context, df *dataFile, consume func(io.Reader) error) error {
	e := df.entry
	b, err := r.openBlob(ctx, df.info.Digest)
	if err != nil {
		return err
	}
	defer b.Close()
	rc, _, err := decompress(b, df.path)
	if err != nil {
		return badMetadata(df.what(), df.url, err)
	}
	defer rc.Close()
	limit := e.OpenSize
	if limit == 0 {
		limit = maxOpenSize
	}
	sum := Checksum{Type: "sha256"}
	if e.OpenChecksum != nil {
		sum = *e.OpenChecksum
	}
	h, err := newHasher(sum)
	if err != nil {
		return err
	}
	in := io.TeeReader(&capReader{r: rc, limit: limit}, h)
	if consume != nil {
		if err := consume(in); err != nil {
			return badMetadata(df.what(), df.url, err)
		}
	}
	if _, err := io.Copy(io.Discard, in); err != nil {
		return badMetadata(df.what(), df.url, fmt.Errorf("decompressing: %w", err))
	}
	return r.checkOpenSums(df, h, limit)
}

func (r *run) checkOpenSums(df *dataFile, h *hasher, limit int64) error {
	e := df.entry
	if h.n > limit {
		return badMetadata(df.what(), df.url, fmt.Errorf("decompresses to more than %d bytes", limit))
	}
	if e.OpenChecksum == nil {
		if e.OpenSize > 0 && h.n != e.OpenSize {
			return fmt.Errorf("%s %s: %w: open-size %d, decompressed %d bytes", df.what(), df.url, ErrMismatch, e.OpenSize, h.n)
		}
		return nil
	}
	if err := h.check(e.OpenSize); err != nil {
		return fmt.Errorf("%s %s: decompressed content does not match repomd.xml's open-checksum: %w; the upstream repository is broken", df.what(), df.url, err)
	}
	return nil
}

// checkZchunkHeader verifies a zchunk file's header against repomd.xml's
// header-checksum and header-size. (The file's checksum already covers it
// all; mirrord cannot decompress zchunk to check the open-checksum.)
func (r *run) checkZchunkHeader(ctx context.Context, df *dataFile) error {
	e := df.entry
	if e.HeaderChecksum == nil || e.HeaderSize == 0 {
		return nil
	}
	b, err := r.openBlob(ctx, df.info.Digest)
	if err != nil {
		return err
	}
	defer b.Close()
	head := make([]byte, e.HeaderSize)
	if _, err := io.ReadFull(b, head); err != nil {
		return fmt.Errorf("%s %s: %w: shorter than its %d byte zchunk header", df.what(), df.url, ErrBadMetadata, e.HeaderSize)
	}
	if err := checkZchunkHead(head, *e.HeaderChecksum); err != nil {
		return fmt.Errorf("%s %s: zchunk header does not match repomd.xml's header-checksum: %w", df.what(), df.url, err)
	}
	return nil
}

// checkZchunkHead checks a zchunk header: the lead is "\x00ZCK1", the
// checksum type and the length of the rest of the header (compressed
// integers), then the header checksum, which covers the whole header
// except itself.
func checkZchunkHead(head []byte, want Checksum) error {
	h, err := newHasher(want)
	if err != nil {
		return err
	}
	const magic = "\x00ZCK1"
	if len(head) < len(magic) || string(head[:len(magic)]) != magic {
		return fmt.Errorf("%w: not a zchunk file", ErrBadMetadata)
	}
	pos := len(magic)
	var rest uint64
	for field := 0; field < 2; field++ {
		v, n := zchunkInt(head[pos:])
		if n == 0 {
			return fmt.Errorf("%w: truncated zchunk lead", ErrBadMetadata)
		}
		pos += n
		rest = v
	}
	size := h.h.Size()
	if uint64(len(head)) != uint64(pos+size)+rest {
		return fmt.Errorf("%w: header-size %d, but the zchunk lead says %d", ErrMismatch, len(head), uint64(pos+size)+rest)
	}
	h.Write(head[:pos])
	h.Write(head[pos+size:])
	if got := h.got(); got.Hex != want.Hex || hex.EncodeToString(head[pos:pos+size]) != want.Hex {
		return fmt.Errorf("%w: expected %s, got %s", ErrMismatch, want, got)
	}
	return nil
}

// zchunkInt decodes a zchunk compressed integer: 7 bits per byte, least
// significant first, the last byte marked by its high bit. n is 0 when b
// ends first.
func zchunkInt(b []byte) (v uint64, n int) {
	for i := 0; i < len(b) && i < 9; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 != 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

// capReader fails a decompressed stream that grows past limit bytes (a
// decompression bomb, or a repomd.xml open-size that lies) with an error
// wrapping store.ErrTooLarge, so every reader, the XML parsers included,
// stops there; its last Read hands over limit+1 bytes, so the caller's
// byte count also shows the excess.
type capReader struct {
	r     io.Reader
	limit int64
	n     int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n > c.limit {
		return 0, c.tooLarge()
	}
	if rest := c.limit + 1 - c.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return n, c.tooLarge()
	}
	return n, err
}

func (c *capReader) tooLarge() error {
	return fmt.Errorf("decompresses to more than %d bytes (a compression bomb, or an open-size in repomd.xml that does not match): %w", c.limit, store.ErrTooLarge)
}
