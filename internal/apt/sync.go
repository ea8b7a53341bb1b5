package apt

import (
	"context"
	"errors"
	"fmt"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store"
)

// indexWorkers is how many indices are fetched and parsed at once.
const indexWorkers = 4

// Sync implements source.Source: verified Releases → selected indices →
// (filter and dependency closure) → pool files → published metadata.
// An unchanged upstream costs one InRelease request per suite.
func (s *Source) Sync(ctx context.Context, env *source.Env) (*source.Result, error) {
	keyring, err := s.keyring()
	if err != nil {
		return nil, err
	}
	if !s.cfg.Verbatim && env.Signer == nil {
		return nil, errors.New("no signing key to publish the mirror with (mirrord's own key is created on first run; check signing.key_file)")
	}
	ups := make([]*upstream, 0, len(s.cfg.Suites))
	for _, suite := range s.cfg.Suites {
		u, err := s.fetchRelease(ctx, env, suite, keyring)
		if err != nil {
			return nil, err
		}
		ups = append(ups, u)
	}
	var node *nodeList
	if s.cfg.FilterFrom != "" {
		if node, err = readNodeList(s.cfg.FilterFrom); err != nil {
			return nil, err
		}
	}
	meta := s.meta(env, ups, node)
	if res, err := s.reuse(ctx, env, meta); res != nil || err != nil {
		return res, err
	}
	r := &run{s: s, env: env, ups: ups, node: node, entries: map[string]snapshot.Entry{}, pool: map[string]poolFile{}}
	res, err := r.sync(ctx)
	if err != nil {
		return nil, err
	}
	res.Meta, res.Upstream = meta, s.cfg.URL
	return res, nil
}

// meta is what a snapshot records to recognise an unchanged upstream.
func (s *Source) meta(env *source.Env, ups []*upstream, node *nodeList) map[string]string {
	m := map[string]string{"settings": s.settings(env, node)}
	for _, u := range ups {
		m["release."+u.suite] = u.identity()
	}
	return m
}

// reuse returns the previous snapshot's tree and items when neither the
// settings nor any suite's signed Release changed.
func (s *Source) reuse(ctx context.Context, env *source.Env, meta map[string]string) (*source.Result, error) {
	prev := env.Prev
	if prev == nil || len(prev.Meta) != len(meta) {
		return nil, nil
	}
	for k, v := range meta {
		if prev.Meta[k] != v {
			return nil, nil
		}
	}
	tree, err := env.Catalog.Tree(ctx, prev.Tree)
	if err != nil {
		return nil, fmt.Errorf("reading the previous snapshot's tree: %w", err)
	}
	items, err := env.Catalog.Items(ctx, prev)
	if err != nil {
		return nil, fmt.Errorf("reading the previous snapshot's items: %w", err)
	}
	env.Log.Debug("upstream unchanged; reusing the previous tree", "files", len(tree.Entries))
	return &source.Result{Upstream: s.cfg.URL, Entries: tree.Entries, Items: items, Meta: meta}, nil
}

// run is one full sync of a source.
type run struct {
	s       *Source
	env     *source.Env
	ups     []*upstream
	node    *nodeList // filter_from, when set
	ixs     []*ixState
	entries map[string]snapshot.Entry // dists/ files of the tree, by path
	pool    map[string]poolFile       // pool files of the tree, by path
}

// ixState is one index during a sync.
type ixState struct {
	*index
	up   *upstream
	pkgs []*binPkg
	srcs []srcPkg
	out  map[string]store.Info // what is served, by suffix
	// extra holds stanzas retained from the previous snapshot (retain):
	// stanza ord nUp+i is extra[i].
	extra [][]byte
	nUp   int

	parser *binParser
}

func (r *run) sync(ctx context.Context) (*source.Result, error) {
	if err := r.plan(); err != nil {
		return nil, err
	}
	if err := r.readIndices(ctx); err != nil {
		return nil, err
	}
	if err := r.retainPrev(ctx); err != nil {
		return nil, err
	}
	sel, err := r.selectPackages()
	if err != nil {
		return nil, err
	}
	if err := r.outputs(ctx, sel); err != nil {
		return nil, err
	}
	if err := r.fetchPool(ctx, sel); err != nil {
		return nil, err
	}
	if err := r.metadata(ctx); err != nil {
		return nil, err
	}
	return r.result(sel), nil
}

func (r *run) plan() error {
	c := r.s.cfg
	sel := selection{components: c.Components, architectures: c.Architectures, sources: c.Sources,
		udebs: c.Udebs, translations: c.Translations, contents: c.Contents, dep11: c.DEP11}
	for _, u := range r.ups {
		ixs, skipped, err := sel.plan(u.suite, u.rel)
		if err != nil {
			return fmt.Errorf("%s: %w", u.signedFile(), err)
		}
		if len(skipped) > 0 {
			r.env.Log.Info("optional indices not offered by the upstream", "suite", u.suite, "skipped", skipped)
		}
		for _, ix := range ixs {
			r.ixs = append(r.ixs, &ixState{index: ix, up: u, out: map[string]store.Info{}})
		}
	}
	return nil
}

// filtered reports whether the published indices are regenerated (a
// subset, or retained versions added).
func (r *run) filtered() bool { return r.s.filtered() }

// filtered reports whether the published indices are regenerated.
func (s *Source) filtered() bool {
	return len(s.filters) > 0 || s.cfg.FilterFrom != "" || s.cfg.Retain != nil
}

// followDeps reports whether the subset follows dependencies.
func (s *Source) followDeps() bool { return s.cfg.FilterWithDeps || s.cfg.FilterFrom != "" }
