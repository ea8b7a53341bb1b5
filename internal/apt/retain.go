package apt

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/mirrord/mirrord/internal/snapshot"
)

// retainPrev adds to every binary index the stanzas the previous
// snapshot published that the upstream no longer lists (retain), so
// that older versions stay installable after the upstream dropped them.
// Their pool files are in the store already (the previous snapshot
// references them), so keeping them costs no download.
func (r *run) retainPrev(ctx context.Context) error {
	prev := r.env.Prev
	if r.s.cfg.Retain == nil || prev == nil || prev.Tree == "" {
		return nil
	}
	tree, err := r.env.Catalog.Tree(ctx, prev.Tree)
	if err != nil {
		return fmt.Errorf("retain: reading the previous snapshot's tree: %w", err)
	}
	for _, ix := range r.ixs {
		if ix.kind != kindPackages && ix.kind != kindUdebs {
			continue
		}
		if err := r.retainIndex(ctx, ix, tree); err != nil {
			return fmt.Errorf("retain: suite %s: previous %s: %w", ix.suite, ix.name, err)
		}
	}
	return nil
}

func (r *run) retainIndex(ctx context.Context, ix *ixState, tree *snapshot.Tree) error {
	var e snapshot.Entry
	var suffix string
	found := false
	for _, suf := range []string{"", ".gz", ".xz"} {
		if e, found = tree.Lookup("dists/" + ix.suite + "/" + ix.name + suf); found {
			suffix = suf
			break
		}
	}
	if !found {
		return nil // the index is new
	}
	have := map[string]bool{}
	for _, p := range ix.pkgs {
		have[p.key()] = true
	}
	b, err := r.env.Blobs.Open(ctx, e.Digest)
	if err != nil {
		return err
	}
	defer b.Close()
	d, err := decompress(bufio.NewReader(b), suffix, r.s.opt.MaxIndexSize)
	if err != nil {
		return err
	}
	defer d.Close()
	p := newParagraphs(d)
	ix.nUp = len(ix.pkgs)
	if ix.parser == nil {
		ix.parser = &binParser{keepRelations: r.s.followDeps(), strs: map[string]string{}}
	}
	for n := 0; ; n++ {
		ok, err := p.next()
		if err != nil {
			return err
		}
		if !ok {
			return nil
		}
		pkg, err := ix.parser.parse(p, ix.nUp+len(ix.extra))
		if err != nil {
			return fmt.Errorf("stanza at line %d: %w", p.start, err)
		}
		pkg.suite, pkg.idxArch = ix.suite, ix.arch
		if have[pkg.key()] {
			continue
		}
		have[pkg.key()] = true
		ix.extra = append(ix.extra, bytes.Clone(p.raw()))
		ix.pkgs = append(ix.pkgs, &pkg)
	}
}

// retainNewest keeps, in every index, the newest n versions of each
// package name and architecture among those sel holds (or all, without a
// filter).
func (r *run) retainNewest(sel *subset, n int) {
	for _, ix := range r.ixs {
		byName := map[string][]*binPkg{}
		for _, p := range ix.pkgs {
			if sel.pkgs[p.key()] {
				k := p.Name + "\x00" + p.Arch
				byName[k] = append(byName[k], p)
			}
		}
		for _, vs := range byName {
			slices.SortFunc(vs, func(a, b *binPkg) int {
				if newer(a, b) {
					return -1
				}
				if newer(b, a) {
					return 1
				}
				return 0
			})
			for _, p := range vs[min(n, len(vs)):] {
				delete(sel.pkgs, p.key())
			}
		}
	}
}

// nUpOr is where the retained stanzas start in ix.pkgs.
func (ix *ixState) nUpOr() int {
	if ix.extra == nil {
		return len(ix.pkgs)
	}
	return ix.nUp
}
