package apt

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"

	"golang.org/x/sync/errgroup"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/store"
)

// readIndices downloads the best variant of every index and parses those
// that list packages.
func (r *run) readIndices(ctx context.Context) error {
	task := r.env.Progress.Task("apt/"+r.s.cfg.Name+" indices", progress.Items("indices"), int64(len(r.ixs)))
	g, gctx := errgroup.WithContext(fetch.WithProgress(ctx, task.Fetched))
	g.SetLimit(indexWorkers)
	for _, ix := range r.ixs {
		g.Go(func() error {
			err := r.readIndex(gctx, ix)
			task.Add(1)
			return err
		})
	}
	err := g.Wait()
	task.Done(err)
	return err
}

func (r *run) readIndex(ctx context.Context, ix *ixState) error {
	best := ix.best()
	info, err := r.fetchVariant(ctx, ix, best)
	if err != nil {
		return err
	}
	ix.out[best.suffix] = info
	if !ix.kind.parsed() {
		return r.storePlain(ctx, ix)
	}
	gen := r.generated(ix)
	if len(gen) == 0 {
		return r.parse(ctx, ix, nil)
	}
	expect := map[string]store.Expect{}
	if ix.plain != nil {
		expect[""] = store.Expect{Digest: ix.plain.SHA256, Size: ix.plain.Size}
	}
	sk, err := newSinks(ctx, r.env.Blobs, gen, expect)
	if err != nil {
		return err
	}
	if err := r.parse(ctx, ix, sk); err != nil {
		sk.Abort(err)
		return err
	}
	made, err := sk.Close()
	if err != nil {
		return fmt.Errorf("suite %s: %s: %w", ix.suite, ix.name, err)
	}
	for suf, info := range made {
		ix.out[suf] = info
	}
	return nil
}

// generated lists the forms of an unfiltered, published index that are
// made while it is parsed: plain when the upstream lists it (it is then
// checked against the Release), and .xz/.gz when the upstream lacks them.
func (r *run) generated(ix *ixState) []string {
	if r.s.cfg.Verbatim || r.filtered() {
		return nil
	}
	var gen []string
	if ix.plain != nil && ix.best().suffix != "" {
		gen = append(gen, "")
	}
	for _, suf := range publishSuffixes {
		if !ix.lists(suf) {
			gen = append(gen, suf)
		}
	}
	return gen
}

// lists reports whether the upstream Release lists the suffix's form.
func (ix *index) lists(suffix string) bool {
	return slices.ContainsFunc(ix.variants, func(v variant) bool { return v.suffix == suffix })
}

// parse streams the stored best variant through its decompressor into the
// stanza parser (and tee, when not nil), and checks the decompressed
// bytes against the plain form's SHA256 when the Release lists one.
func (r *run) parse(ctx context.Context, ix *ixState, tee io.Writer) error {
	best := ix.best()
	where := fmt.Sprintf("%s%s (decompressed from %s)", ix.up.dist, ix.name, ix.path(best.suffix))
	h := sha256.New()
	var n countWriter
	sinks := []io.Writer{h, &n}
	if tee != nil {
		sinks = append(sinks, tee)
	}
	err := r.readStanzas(ctx, ix, io.MultiWriter(sinks...), func(p *paragraphs, ord int) error {
		return r.record(ix, p, ord)
	})
	if err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	if ix.plain == nil {
		return nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != string(ix.plain.SHA256) || int64(n) != ix.plain.Size {
		return fmt.Errorf("%s: decompressed content has sha256 %s (%d bytes), the Release lists %s (%d bytes): %w; the upstream is inconsistent or mid-update, retry later",
			where, got, n, ix.plain.SHA256, ix.plain.Size, store.ErrDigestMismatch)
	}
	return nil
}

// readStanzas opens the stored best variant of ix, decompresses it and
// calls fn for every stanza; tee gets the exact decompressed bytes.
func (r *run) readStanzas(ctx context.Context, ix *ixState, tee io.Writer, fn func(*paragraphs, int) error) error {
	best := ix.best()
	b, err := r.env.Blobs.Open(ctx, best.sum.SHA256)
	if err != nil {
		return fmt.Errorf("opening the stored index: %w", err)
	}
	defer b.Close()
	// Decoders read in small pieces (xz byte by byte): buffer the file.
	d, err := decompress(bufio.NewReaderSize(b, 256<<10), best.suffix, r.s.opt.MaxIndexSize)
	if err != nil {
		return err
	}
	defer d.Close()
	var src io.Reader = d
	if tee != nil {
		src = io.TeeReader(d, tee)
	}
	p := newParagraphs(src)
	for ord := 0; ; ord++ {
		if ord%1024 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		ok, err := p.next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		if err := fn(p, ord); err != nil {
			return fmt.Errorf("stanza at line %d: %w", p.start, err)
		}
	}
}

// record keeps what a stanza says.
func (r *run) record(ix *ixState, p *paragraphs, ord int) error {
	if ix.kind == kindSources {
		sp, err := parseSource(p, ord)
		if err != nil {
			return err
		}
		ix.srcs = append(ix.srcs, sp)
		return nil
	}
	if ix.parser == nil {
		ix.parser = &binParser{keepRelations: r.filtered() && r.s.followDeps(), strs: map[string]string{}}
	}
	pkg, err := ix.parser.parse(p, ord)
	if err != nil {
		return err
	}
	pkg.suite, pkg.idxArch = ix.suite, ix.arch
	ix.pkgs = append(ix.pkgs, &pkg)
	return nil
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// maxPassThroughSize caps the decompressed size of an index mirrord
// passes through (Contents-amd64 is the largest, under 1 GiB).
const maxPassThroughSize = 8 << 30

// storePlain stores the decompressed form of a passed-through index
// (Contents, Translation, DEP-11) beside the compressed one, checked
// against the plain SHA256 the upstream Release lists when it lists one:
// apt only fetches an index target whose uncompressed name the Release
// lists, and mirrord's Release lists only what it serves.
func (r *run) storePlain(ctx context.Context, ix *ixState) error {
	best := ix.best()
	if r.s.cfg.Verbatim || best.suffix == "" {
		return nil
	}
	b, err := r.env.Blobs.Open(ctx, best.sum.SHA256)
	if err != nil {
		return fmt.Errorf("opening the stored index: %w", err)
	}
	defer b.Close()
	d, err := decompress(bufio.NewReaderSize(b, 256<<10), best.suffix, maxPassThroughSize)
	if err != nil {
		return fmt.Errorf("suite %s: %s: %w", ix.suite, ix.path(best.suffix), err)
	}
	defer d.Close()
	exp := store.Expect{MaxSize: maxPassThroughSize}
	if ix.plain != nil {
		exp = store.Expect{Digest: ix.plain.SHA256, Size: ix.plain.Size}
	}
	info, err := r.env.Blobs.Put(ctx, d, exp)
	if err != nil {
		return fmt.Errorf("suite %s: %s decompressed from %s: %w", ix.suite, ix.name, ix.path(best.suffix), err)
	}
	ix.out[""] = info
	return nil
}
