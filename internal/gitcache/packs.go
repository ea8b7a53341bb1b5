package gitcache

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store"
)

// A git source keeps its objects in the blob store as a chain of packs:
// each sync writes one pack (with its index) of the objects its ref set
// reaches that the previous snapshot's did not, and the source's tree
// names every pack of the chain:
//
//	refs.txt                       the ref set (git ls-remote format)
//	repos.yaml                     the file the sources came from
//	packs/pack-<sha1>.pack         one pack of the chain, a blob
//	packs/pack-<sha1>.idx          its index
//	packs/pack-<sha1>.bitmap       reachability bitmap (full packs only)
//
// So everything a snapshot needs is in the store: any host builds the bare
// repository it serves from from the chain (hydrate), and the one under
// data_dir is a cache. Once a chain has Options.MaxPacks packs, the next sync
// writes one full pack of its ref set instead, which starts a new chain;
// the old packs stay as long as a snapshot names them (gc is the store's
// ordinary mark and sweep).
const packsDir = "packs"

// pack is one pack of a chain: its files as tree entries.
type pack struct {
	name  string           // "pack-<sha1>"
	files []snapshot.Entry // .pack, then .bitmap if any, then .idx
}

// packExts are a pack's files in the order they are placed in a
// repository: git finds a pack by its .idx, so that comes last.
var packExts = []string{".pack", ".bitmap", ".idx"}

// chainOf returns the packs a tree names, by name.
func chainOf(entries []snapshot.Entry) []pack {
	byName := map[string]*pack{}
	var names []string
	for _, e := range entries {
		dir, file := path.Split(e.Path)
		if dir != packsDir+"/" {
			continue
		}
		ext := path.Ext(file)
		name := strings.TrimSuffix(file, ext)
		if !slices.Contains(packExts, ext) || !strings.HasPrefix(name, "pack-") {
			continue
		}
		p := byName[name]
		if p == nil {
			p = &pack{name: name}
			byName[name] = p
			names = append(names, name)
		}
		p.files = append(p.files, e)
	}
	slices.Sort(names)
	out := make([]pack, 0, len(names))
	for _, n := range names {
		p := byName[n]
		slices.SortFunc(p.files, func(a, b snapshot.Entry) int {
			return slices.Index(packExts, path.Ext(a.Path)) - slices.Index(packExts, path.Ext(b.Path))
		})
		if path.Ext(p.files[0].Path) == ".pack" && path.Ext(p.files[len(p.files)-1].Path) == ".idx" {
			out = append(out, *p)
		}
	}
	return out
}

func chainEntries(chain []pack) []snapshot.Entry {
	var out []snapshot.Entry
	for _, p := range chain {
		out = append(out, p.files...)
	}
	return out
}

// previous is what a sync builds on: the previous snapshot's ref set and
// pack chain (no chain when there was none, or it had no packs).
type previous struct {
	rs    RefSet
	pin   string
	chain []pack
}

// loadPrevious reads env.Prev's chain from its tree.
func loadPrevious(ctx context.Context, env *source.Env) (previous, error) {
	p := env.Prev
	if p == nil || env.Catalog == nil {
		return previous{}, nil
	}
	tree, err := env.Catalog.Tree(ctx, p.Tree)
	if err != nil {
		return previous{}, fmt.Errorf("reading the previous snapshot's tree: %w", err)
	}
	rs := RefSetOf(p.Refs)
	return previous{rs: rs, pin: rs.Pin(), chain: chainOf(tree.Entries)}, nil
}

// tips returns the distinct object ids rs's refs point at, sorted.
func (rs RefSet) tips() []string {
	var ids []string
	for _, id := range rs.Refs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// packs returns the chain of the snapshot whose ref set is rs: prev's
// chain when rs adds no objects, else prev's chain plus a pack of what rs
// adds, or one full pack when there is no usable chain or it has maxPacks
// packs already. New packs
// are stored in blobs and marked present in m's repository.
func (m *mirror) packs(ctx context.Context, blobs store.Blobs, rs RefSet, prev previous, maxPacks int) ([]pack, error) {
	if len(prev.chain) > 0 && (prev.pin == rs.Pin() || isSubset(rs.tips(), prev.rs.tips())) {
		return prev.chain, nil // nothing new: an unchanged source keeps its tree
	}
	full := len(prev.chain) == 0 || len(prev.chain) >= maxPacks
	var not []string
	if !full {
		not = prev.rs.tips()
	}
	p, ok, err := m.writePack(ctx, blobs, rs.tips(), not, full)
	if err != nil {
		return nil, err
	}
	switch {
	case full && !ok:
		return nil, nil // an empty upstream
	case full:
		return []pack{p}, nil
	case !ok:
		return prev.chain, nil
	}
	return append(slices.Clone(prev.chain), p), nil
}

func isSubset(xs, of []string) bool {
	for _, x := range xs {
		if _, found := slices.BinarySearch(of, x); !found {
			return false
		}
	}
	return true
}

// writePack packs the objects reachable from tips but not from not (C
// git's pack-objects; a full pack gets a reachability bitmap), stores its
// files in blobs and marks it present. ok is false when there were no
// objects to pack.
func (m *mirror) writePack(ctx context.Context, blobs store.Blobs, tips, not []string, full bool) (pack, bool, error) {
	if len(tips) == 0 {
		return pack{}, false, nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(m.dir), ".pack-")
	if err != nil {
		return pack{}, false, err
	}
	defer os.RemoveAll(tmp)
	var out []byte
	if full {
		out, err = m.fullPack(ctx, tmp, tips)
	} else {
		var in bytes.Buffer
		for _, t := range tips {
			fmt.Fprintln(&in, t)
		}
		in.WriteString("--not\n")
		for _, t := range not {
			fmt.Fprintln(&in, t)
		}
		out, err = m.git.run(ctx, &in, nil, "--git-dir="+m.dir, "pack-objects", "--revs", "--delta-base-offset", "-q", filepath.Join(tmp, "pack"))
	}
	if err != nil {
		return pack{}, false, fmt.Errorf("packing objects: %w", err)
	}
	hash := strings.TrimSpace(string(out))
	name := "pack-" + hash
	if n, err := packObjects(filepath.Join(tmp, name+".pack")); err != nil {
		return pack{}, false, err
	} else if n == 0 {
		return pack{}, false, nil
	}
	p := pack{name: name}
	for _, ext := range packExts {
		e, err := putFile(ctx, blobs, filepath.Join(tmp, name+ext), packsDir+"/"+name+ext)
		if errors.Is(err, os.ErrNotExist) && ext == ".bitmap" {
			continue
		}
		if err != nil {
			return pack{}, false, err
		}
		p.files = append(p.files, e)
	}
	if err := m.markPresent(name); err != nil {
		return pack{}, false, err
	}
	return p, true, nil
}

// fullPack packs everything tips reach, with a reachability bitmap, into
// dir/pack-<sha1>.*. pack-objects writes a bitmap only for --all, so it
// runs in a scratch repository that borrows m's objects (alternates) and
// whose only refs are tips.
func (m *mirror) fullPack(ctx context.Context, dir string, tips []string) ([]byte, error) {
	scratch := filepath.Join(dir, "scratch.git")
	if _, err := m.git.run(ctx, nil, nil, "init", "--quiet", "--bare", scratch); err != nil {
		return nil, err
	}
	objects, err := filepath.Abs(filepath.Join(m.dir, "objects"))
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(scratch, "objects", "info", "alternates"), []byte(objects+"\n"), 0o644); err != nil {
		return nil, err
	}
	var refs bytes.Buffer
	for i, t := range tips {
		fmt.Fprintf(&refs, "create refs/tips/%d %s\n", i, t)
	}
	if _, err := m.git.run(ctx, &refs, nil, "--git-dir="+scratch, "update-ref", "--stdin"); err != nil {
		return nil, err
	}
	return m.git.run(ctx, nil, nil, "--git-dir="+scratch, "pack-objects", "--all", "--write-bitmap-index", "--delta-base-offset", "-q", filepath.Join(dir, "pack"))
}

// packObjects reads the object count from a pack's header.
func packObjects(file string) (uint32, error) {
	f, err := os.Open(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var hdr [12]byte
	if _, err := io.ReadFull(f, hdr[:]); err != nil || string(hdr[:4]) != "PACK" {
		return 0, fmt.Errorf("%s: not a pack file (%v)", file, err)
	}
	return binary.BigEndian.Uint32(hdr[8:]), nil
}

// putFile stores a local file in blobs as the tree entry at treePath.
func putFile(ctx context.Context, blobs store.Blobs, file, treePath string) (snapshot.Entry, error) {
	f, err := os.Open(file)
	if err != nil {
		return snapshot.Entry{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return snapshot.Entry{}, err
	}
	info, err := blobs.Put(ctx, f, store.Expect{Size: st.Size()})
	if err != nil {
		return snapshot.Entry{}, fmt.Errorf("storing %s: %w", treePath, err)
	}
	return snapshot.Entry{Path: treePath, Digest: info.Digest, Size: info.Size}, nil
}
