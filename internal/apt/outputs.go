package apt

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/store"
)

// fetchVariant downloads one listed form of an index into the store,
// checked against the Release's size and SHA256 while it streams. When
// the upstream announces Acquire-By-Hash, the by-hash URL is tried first:
// it cannot change under a sync that races an upstream update.
func (r *run) fetchVariant(ctx context.Context, ix *ixState, v variant) (store.Info, error) {
	exp := store.Expect{Digest: v.sum.SHA256, Size: v.sum.Size, MaxSize: max(v.sum.Size, 1)}
	if ix.up.rel.byHash() {
		dir := ix.dir()
		if dir != "" {
			dir += "/"
		}
		info, err := r.env.Fetch.Blob(ctx, ix.up.dist+dir+"by-hash/SHA256/"+string(v.sum.SHA256), exp)
		if err == nil || !errors.Is(err, fetch.ErrNotFound) {
			return info, r.variantError(ix, v, err)
		}
	}
	info, err := r.env.Fetch.Blob(ctx, ix.up.dist+ix.path(v.suffix), exp)
	return info, r.variantError(ix, v, err)
}

func (r *run) variantError(ix *ixState, v variant, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("suite %s: %s (the Release lists sha256 %s, %d bytes): %w", ix.suite, ix.path(v.suffix), v.sum.SHA256, v.sum.Size, fetch.IndexMismatch(err))
}

// outputs completes what every index serves: verbatim, every listed form;
// published and unfiltered, the upstream's .xz/.gz (generated ones were
// made while parsing); published and filtered, the subset in plain (when
// the upstream had it), .xz and .gz.
func (r *run) outputs(ctx context.Context, sel *subset) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(indexWorkers)
	for _, ix := range r.ixs {
		g.Go(func() error {
			switch {
			case r.s.cfg.Verbatim:
				return r.fetchListed(gctx, ix, ix.variants)
			case sel != nil && ix.kind.parsed():
				return r.writeSubset(gctx, ix, func(ord int) bool { return ix.selected(ord, sel) })
			case ix.kind.parsed():
				return r.completeUnfiltered(gctx, ix)
			}
			return nil
		})
	}
	return g.Wait()
}

// selected reports whether stanza ord of the index is in the subset.
func (ix *ixState) selected(ord int, sel *subset) bool {
	if ix.kind == kindSources {
		return sel.hasSource(ix.suite, ix.srcs[ord].Name)
	}
	return sel.hasPkg(ix.pkgs[ord])
}

// fetchListed downloads the forms not stored yet; a form the Release
// lists but the upstream does not serve (Debian lists plain Packages it
// does not carry) is skipped.
func (r *run) fetchListed(ctx context.Context, ix *ixState, vs []variant) error {
	for _, v := range vs {
		if _, ok := ix.out[v.suffix]; ok {
			continue
		}
		info, err := r.fetchVariant(ctx, ix, v)
		if errors.Is(err, fetch.ErrNotFound) {
			r.env.Log.Debug("listed index form not served upstream", "suite", ix.suite, "file", ix.path(v.suffix))
			continue
		}
		if err != nil {
			return err
		}
		ix.out[v.suffix] = info
	}
	return nil
}

// completeUnfiltered fetches the upstream's .xz and .gz not stored yet;
// if the upstream lists but does not serve one, it is generated.
func (r *run) completeUnfiltered(ctx context.Context, ix *ixState) error {
	var want []variant
	for _, v := range ix.variants {
		if v.suffix == ".xz" || v.suffix == ".gz" {
			want = append(want, v)
		}
	}
	if err := r.fetchListed(ctx, ix, want); err != nil {
		return err
	}
	var missing []string
	for _, suf := range publishSuffixes {
		if _, ok := ix.out[suf]; !ok {
			missing = append(missing, suf)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return r.regenerate(ctx, ix, missing, func(int) bool { return true })
}

// writeSubset stores the selected stanzas of ix as plain (when the
// upstream had it), .xz and .gz.
func (r *run) writeSubset(ctx context.Context, ix *ixState, keep func(ord int) bool) error {
	suffixes := publishSuffixes
	if ix.plain != nil {
		suffixes = append([]string{""}, suffixes...)
	}
	clear(ix.out)
	return r.regenerate(ctx, ix, suffixes, keep)
}

// regenerate re-reads the stored index and writes the stanzas keep
// accepts, in their original order and text, into the given forms.
func (r *run) regenerate(ctx context.Context, ix *ixState, suffixes []string, keep func(ord int) bool) error {
	sk, err := newSinks(ctx, r.env.Blobs, suffixes, nil)
	if err != nil {
		return err
	}
	write := func(stanza []byte) error {
		if _, err := sk.Write(stanza); err != nil {
			return err
		}
		_, err := sk.Write([]byte{'\n'})
		return err
	}
	err = r.readStanzas(ctx, ix, nil, func(p *paragraphs, ord int) error {
		if !keep(ord) {
			return nil
		}
		return write(p.raw())
	})
	for i, stanza := range ix.extra {
		if err == nil && keep(ix.nUp+i) {
			err = write(stanza)
		}
	}
	if err != nil {
		sk.Abort(err)
		return fmt.Errorf("suite %s: writing %s: %w", ix.suite, ix.name, err)
	}
	made, err := sk.Close()
	if err != nil {
		return fmt.Errorf("suite %s: writing %s: %w", ix.suite, ix.name, err)
	}
	for suf, info := range made {
		ix.out[suf] = info
	}
	return nil
}
