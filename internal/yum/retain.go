package yum

import (
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/mirrord/mirrord/internal/snapshot"
)

// retained is what the previous snapshot published that retain may keep:
// its packages the upstream no longer lists, and its metadata documents
// to copy their entries from.
type retained struct {
	pkgs  []*pkg                    // Index: position in the previous primary.xml
	docs  map[string]snapshot.Entry // data type → the previous snapshot's file
	hrefs map[string]string         // data type → its path
	files map[string]snapshot.Entry // package path → the previous snapshot's file
}

// loadRetained reads the previous snapshot's published primary.xml and
// keeps the packages the upstream (pkgs) no longer lists. Their files are
// in the store already (the previous snapshot references them).
func (r *run) loadRetained(ctx context.Context, pkgs []*pkg) (*retained, error) {
	prev := r.env.Prev
	if r.s.opt.Retain <= 0 || prev == nil || r.env.Catalog == nil {
		return nil, nil
	}
	tree, err := r.env.Catalog.Tree(ctx, prev.Tree)
	if err != nil {
		return nil, fmt.Errorf("retain: previous snapshot's tree: %w", err)
	}
	byPath := map[string]snapshot.Entry{}
	for _, e := range tree.Entries {
		byPath[e.Path] = e
	}
	mdEntry, ok := byPath["repodata/repomd.xml"]
	if !ok {
		return nil, nil
	}
	raw, err := r.readAll(ctx, mdEntry)
	if err != nil {
		return nil, err
	}
	md, err := parseRepomd(raw)
	if err != nil {
		return nil, fmt.Errorf("retain: previous snapshot's repomd.xml: %w", err)
	}
	ret := &retained{docs: map[string]snapshot.Entry{}, hrefs: map[string]string{}, files: map[string]snapshot.Entry{}}
	for _, typ := range []string{"primary", "filelists", "other"} {
		if d := md.find(typ); d != nil {
			if e, ok := byPath[d.Href]; ok {
				ret.docs[typ], ret.hrefs[typ] = e, d.Href
			}
		}
	}
	if _, ok := ret.docs["primary"]; !ok {
		return nil, nil
	}
	have := map[string]bool{}
	for _, p := range pkgs {
		have[p.NEVRA()] = true
	}
	i := 0
	err = r.readPrev(ctx, ret, "primary", func(rd io.Reader) error {
		return parsePrimary(rd, true, func(p *pkg) error {
			p.Index, i = i, i+1
			e, ok := byPath[p.Href]
			if have[p.NEVRA()] || !ok {
				return nil
			}
			p.Path = p.Href
			ret.files[p.Path] = e
			ret.pkgs = append(ret.pkgs, p)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("retain: previous snapshot's primary.xml: %w", err)
	}
	return ret, nil
}

func (r *run) readAll(ctx context.Context, e snapshot.Entry) ([]byte, error) {
	b, err := r.openBlob(ctx, e.Digest)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	return io.ReadAll(io.LimitReader(b, maxRepomdSize))
}

// readPrev streams the decompressed previous document of typ.
func (r *run) readPrev(ctx context.Context, ret *retained, typ string, fn func(io.Reader) error) error {
	b, err := r.openBlob(ctx, ret.docs[typ].Digest)
	if err != nil {
		return err
	}
	defer b.Close()
	rc, _, err := decompress(b, ret.hrefs[typ])
	if err != nil {
		return err
	}
	defer rc.Close()
	return fn(rc)
}

// applyRetain adds the retained packages of every name the selection
// holds (every name, without a filter), then keeps the newest n versions
// of each name and architecture. It returns the upstream packages and
// the retained ones to publish.
func applyRetain(sel []*pkg, ret *retained, n int, filtered bool) (up, old []*pkg) {
	names := map[string]bool{}
	for _, p := range sel {
		names[p.Name] = true
	}
	all := slices.Clone(sel)
	isOld := map[*pkg]bool{}
	if ret != nil {
		for _, p := range ret.pkgs {
			if !filtered || names[p.Name] {
				all = append(all, p)
				isOld[p] = true
			}
		}
	}
	byName := map[string][]*pkg{}
	for _, p := range all {
		byName[p.Name+"."+p.Arch] = append(byName[p.Name+"."+p.Arch], p)
	}
	keep := map[*pkg]bool{}
	for _, vs := range byName {
		slices.SortStableFunc(vs, func(a, b *pkg) int { return b.EVR.Compare(a.EVR) })
		for _, p := range vs[:min(n, len(vs))] {
			keep[p] = true
		}
	}
	for _, p := range all {
		if !keep[p] {
			continue
		}
		if isOld[p] {
			old = append(old, p)
		} else {
			up = append(up, p)
		}
	}
	return up, old
}

// oldDoc is the previous snapshot's document of one type, with the
// retained packages to copy from it.
type oldDoc struct {
	pkgs []*pkg
	open func() (io.ReadCloser, error)
}

// copy runs fn over the decompressed document.
func (d *oldDoc) copy(fn func(io.Reader) (int, error)) (int, error) {
	rc, err := d.open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return fn(rc)
}

// oldDoc returns the previous document of typ when packages are retained
// from it, or nil.
func (r *run) oldDoc(ctx context.Context, typ string) *oldDoc {
	if len(r.old) == 0 {
		return nil
	}
	e, ok := r.ret.docs[typ]
	if !ok {
		return nil
	}
	href := r.ret.hrefs[typ]
	return &oldDoc{pkgs: r.old, open: func() (io.ReadCloser, error) {
		b, err := r.openBlob(ctx, e.Digest)
		if err != nil {
			return nil, err
		}
		rc, _, err := decompress(b, href)
		if err != nil {
			b.Close()
			return nil, err
		}
		return readCloser{rc, b}, nil
	}}
}

type readCloser struct {
	io.ReadCloser
	under io.Closer
}

func (c readCloser) Close() error {
	err := c.ReadCloser.Close()
	if uerr := c.under.Close(); err == nil {
		err = uerr
	}
	return err
}
