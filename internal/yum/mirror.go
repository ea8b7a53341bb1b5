package yum

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/mirrord/mirrord/internal/source"
)

// syncPinned mirrors the upstream state p names: metadata, packages,
// .treeinfo, and (when filtered) the regenerated, re-signed metadata.
func (r *run) syncPinned(ctx context.Context, p *pin) (res *source.Result, err error) {
	start := time.Now()
	m, err := r.fetchMetadata(ctx, p.md)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.abort()
		}
	}()
	r.log.Debug("primary metadata read", "packages", len(m.pkgs), "took", time.Since(start).Round(time.Millisecond))
	pkgs, err := r.locatePackages(m.pkgs)
	if err != nil {
		return nil, err
	}
	if r.s.filtered() {
		if err := m.wait(); err != nil {
			return nil, err
		}
		all := pkgs
		if pkgs, err = r.selectPackages(ctx, pkgs, m.files); err != nil {
			return nil, err
		}
		if r.s.opt.Retain > 0 {
			if r.ret, err = r.loadRetained(ctx, all); err != nil {
				return nil, err
			}
			pkgs, r.old = applyRetain(pkgs, r.ret, r.s.opt.Retain, r.s.subset())
		}
	}
	set := entrySet{}
	if err := r.mirrorPackages(ctx, set, pkgs); err != nil {
		return nil, err
	}
	for _, p := range r.old {
		set[p.Path] = r.ret.files[p.Path]
	}
	if err := m.wait(); err != nil {
		return nil, err
	}
	if err := r.mirrorTreeinfo(ctx, set); err != nil {
		return nil, err
	}
	if err := r.addKey(ctx, set); err != nil {
		return nil, err
	}
	if r.s.filtered() {
		err = r.publish(ctx, set, p, m.files, pkgs)
	} else {
		err = r.addVerbatim(ctx, set, p, m.files)
	}
	if err != nil {
		return nil, err
	}
	r.log.Info("yum repository mirrored", "repomd", p.digest, "packages", len(pkgs), "files", len(set), "filtered", r.s.filtered())
	return &source.Result{
		Upstream: r.s.up.String(),
		Entries:  set.list(),
		Items:    items(append(slices.Clone(pkgs), r.old...)),
		Meta:     map[string]string{metaRepomd: string(p.digest), metaConfig: r.fp, metaRevision: p.md.Revision},
	}, nil
}

// mirrorPackages fetches and checks pkgs into set.
func (r *run) mirrorPackages(ctx context.Context, set entrySet, pkgs []*pkg) error {
	start := time.Now()
	entries, err := r.fetchPackages(ctx, pkgs)
	if err != nil {
		return err
	}
	for _, e := range entries {
		set[e.Path] = e
	}
	r.log.Debug("packages mirrored and verified", "packages", len(entries), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// addVerbatim adds upstream's repomd.xml, repomd.xml.asc and data files
// as they are.
func (r *run) addVerbatim(ctx context.Context, set entrySet, p *pin, data map[string]*dataFile) error {
	for _, df := range data {
		if err := set.add(df.path, df.info); err != nil {
			return err
		}
	}
	info, err := r.putBytes(ctx, p.raw)
	if err != nil {
		return err
	}
	if err := set.add("repodata/repomd.xml", info); err != nil {
		return err
	}
	if p.asc == nil {
		return nil
	}
	if info, err = r.putBytes(ctx, p.asc); err != nil {
		return err
	}
	return set.add("repodata/repomd.xml.asc", info)
}

// addKey puts the upstream gpgkey in the tree, for clients' gpgkey= lines.
func (r *run) addKey(ctx context.Context, set entrySet) error {
	if r.keys == nil {
		return nil
	}
	info, err := r.putBytes(ctx, r.keys.armored)
	if err != nil {
		return fmt.Errorf("storing the gpgkey: %w", err)
	}
	return set.add(KeyPath, info)
}
