package yum

import (
	"context"
	"fmt"

	"github.com/mirrord/mirrord/internal/snapshot"
)

// prevTree is the previous snapshot's tree by path, when it was made with
// the same configuration: files in it that still match their index need
// neither a download nor another check.
type prevTree struct {
	byPath map[string]snapshot.Entry
}

// loadPrev returns the previous tree, or nil when there is none to trust.
func (r *run) loadPrev(ctx context.Context) (*prevTree, error) {
	prev := r.env.Prev
	if prev == nil || prev.Meta[metaConfig] != r.fp || r.env.Catalog == nil {
		return nil, nil
	}
	t, err := r.env.Catalog.Tree(ctx, prev.Tree)
	if err != nil {
		return nil, fmt.Errorf("previous snapshot's tree: %w", err)
	}
	p := &prevTree{byPath: make(map[string]snapshot.Entry, len(t.Entries))}
	for _, e := range t.Entries {
		p.byPath[e.Path] = e
	}
	return p, nil
}

// lookup is safe on a nil *prevTree.
func (p *prevTree) lookup(path string) (snapshot.Entry, bool) {
	if p == nil {
		return snapshot.Entry{}, false
	}
	e, ok := p.byPath[path]
	return e, ok
}
