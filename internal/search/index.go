package search

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// Update indexes every snapshot of cat newer than the last one indexed,
// oldest first, and returns how many it indexed. Sources without an item
// list (file sources) are not indexed. Only one Update may run at a time
// per store: the syncer calls it while it holds the sync lock.
func Update(ctx context.Context, cat *snapshot.Catalog) (int, error) {
	meta := cat.Store().Meta()
	last, err := readState(ctx, meta)
	if err != nil {
		return 0, err
	}
	ids, err := cat.IDs(ctx)
	if err != nil {
		return 0, err
	}
	i := sort.SearchStrings(ids, last)
	if i < len(ids) && ids[i] == last {
		i++
	}
	todo := ids[i:]
	if len(todo) == 0 {
		return 0, nil
	}
	loaded := map[string]*sourceIndex{}
	dirty := map[string]bool{}
	for _, id := range todo {
		rec, err := cat.Get(ctx, id)
		if errors.Is(err, snapshot.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return 0, err
		}
		if err := applyRecord(ctx, cat, rec, loaded, dirty); err != nil {
			return 0, err
		}
	}
	for src := range dirty {
		if err := meta.Put(ctx, sourceKey(src), loaded[src].encode()); err != nil {
			return 0, fmt.Errorf("search index of %s: %w", src, err)
		}
	}
	if err := meta.Put(ctx, stateKey, []byte(todo[len(todo)-1]+"\n")); err != nil {
		return 0, fmt.Errorf("search index state: %w", err)
	}
	return len(todo), nil
}

func applyRecord(ctx context.Context, cat *snapshot.Catalog, rec *snapshot.Record, loaded map[string]*sourceIndex, dirty map[string]bool) error {
	for i := range rec.Sources {
		src := &rec.Sources[i]
		if src.Items == "" {
			continue
		}
		key := src.Key()
		si, ok := loaded[key]
		if !ok {
			var err error
			if si, err = readSource(ctx, cat.Store().Meta(), key); err != nil {
				return err
			}
			loaded[key] = si
		}
		if n := len(si.gens); n > 0 && si.gens[n-1] == src.Items {
			continue
		}
		items, err := cat.Items(ctx, src)
		if err != nil {
			return fmt.Errorf("search index: snapshot %s: %w", rec.ID, err)
		}
		si.apply(src.Items, items)
		dirty[key] = true
	}
	return nil
}

func readState(ctx context.Context, meta store.Meta) (string, error) {
	b, err := meta.Get(ctx, stateKey)
	if store.IsNotExist(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("search index state: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// readSource loads one source's index; absent is empty.
func readSource(ctx context.Context, meta store.Meta, src string) (*sourceIndex, error) {
	b, err := meta.Get(ctx, sourceKey(src))
	if store.IsNotExist(err) {
		return newSourceIndex(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("search index of %s: %w", src, err)
	}
	si, err := decodeSourceIndex(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("search index of %s (meta %s): %w; delete it and %s to rebuild it at the next sync", src, sourceKey(src), err, stateKey)
	}
	return si, nil
}

// Index is a loaded, read-only search index. Safe for concurrent use.
type Index struct {
	last    string
	sources map[string]*sourceIndex
	keys    []string            // sorted source keys
	names   map[string][]string // source → sorted names, for prefix matches
}

// Load reads the whole index.
func Load(ctx context.Context, meta store.Meta) (*Index, error) {
	last, err := readState(ctx, meta)
	if err != nil {
		return nil, err
	}
	ix := &Index{last: last, sources: map[string]*sourceIndex{}, names: map[string][]string{}}
	kinds, err := meta.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("listing search indices: %w", err)
	}
	for _, kind := range kinds {
		if kind == "state" {
			continue
		}
		names, err := meta.List(ctx, prefix+"/"+kind)
		if err != nil {
			return nil, fmt.Errorf("listing search indices: %w", err)
		}
		for _, n := range names {
			key := kind + "/" + n
			si, err := readSource(ctx, meta, key)
			if err != nil {
				return nil, err
			}
			ix.sources[key] = si
			ix.keys = append(ix.keys, key)
			ns := make([]string, 0, len(si.items))
			for name := range si.items {
				ns = append(ns, name)
			}
			sort.Strings(ns)
			ix.names[key] = ns
		}
	}
	sort.Strings(ix.keys)
	return ix, nil
}

// Last is the ID of the newest snapshot the index covers ("" if none).
func (ix *Index) Last() string { return ix.last }

// Posting is one version of a package in one source, and the item lists
// (digests, as snapshot records name them in SourceRecord.Items) it is in.
// Name is the item's name in the list ("openssl:amd64").
type Posting struct {
	Source, Name, Version string
	Lists                 []store.Digest
}

// Matches says whether item name n is package name: n itself, or name
// with an architecture suffix, as apt ("NAME:ARCH") and yum ("NAME.ARCH")
// items are named. The suffix has no further '.' or ':', so "python3"
// does not match "python3.11.x86_64".
func Matches(n, name string) bool {
	if n == name {
		return true
	}
	rest, ok := strings.CutPrefix(n, name)
	return ok && len(rest) > 1 && (rest[0] == ':' || rest[0] == '.') && !strings.ContainsAny(rest[1:], ".:")
}

// Lookup returns every (source, item, version) of package name (see
// Matches), restricted to version when that is not "", sorted by source,
// item name, then version.
func (ix *Index) Lookup(name, version string) []Posting {
	var out []Posting
	for _, key := range ix.keys {
		si, ns := ix.sources[key], ix.names[key]
		for i := sort.SearchStrings(ns, name); i < len(ns) && strings.HasPrefix(ns[i], name); i++ {
			if !Matches(ns[i], name) {
				continue
			}
			for _, e := range si.items[ns[i]] {
				if version != "" && e.version != version {
					continue
				}
				out = append(out, si.posting(key, ns[i], e))
			}
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Source != b.Source {
			return a.Source < b.Source
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.Version < b.Version
	})
	return out
}

func (si *sourceIndex) posting(key, name string, e *entry) Posting {
	p := Posting{Source: key, Name: name, Version: e.version}
	for _, s := range e.spans {
		to := s.to
		if to < 0 {
			to = len(si.gens)
		}
		p.Lists = append(p.Lists, si.gens[s.from:to]...)
	}
	return p
}

// Suggest returns up to n package names, over all sources, that start
// with prefix, sorted.
func (ix *Index) Suggest(prefix string, n int) []string {
	seen := map[string]bool{}
	for _, key := range ix.keys {
		ns := ix.names[key]
		for i := sort.SearchStrings(ns, prefix); i < len(ns) && strings.HasPrefix(ns[i], prefix); i++ {
			seen[ns[i]] = true
			if len(seen) >= 4*n {
				break
			}
		}
	}
	out := make([]string, 0, len(seen))
	for s := range seen {
		out = append(out, s)
	}
	sort.Strings(out)
	if len(out) > n {
		out = out[:n]
	}
	return out
}
