package snapshot

import (
	"context"
	"sort"
)

// ItemChange is one item whose version differs between two snapshots.
type ItemChange struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
}

// SourceDiff describes how one source changed from snapshot A to B.
type SourceDiff struct {
	Source  string       `json:"source"`
	Status  string       `json:"status"` // added, removed, changed, unchanged
	Added   []Item       `json:"added,omitempty"`
	Removed []Item       `json:"removed,omitempty"`
	Changed []ItemChange `json:"changed,omitempty"`
}

// Diff compares every source of a and b by their items.
func (c *Catalog) Diff(ctx context.Context, a, b *Record) ([]SourceDiff, error) {
	keys := map[string]bool{}
	for _, s := range a.Sources {
		keys[s.Key()] = true
	}
	for _, s := range b.Sources {
		keys[s.Key()] = true
	}
	var out []SourceDiff
	for k := range keys {
		d, err := c.diffSource(ctx, k, a, b)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Source < out[j].Source })
	return out, nil
}

func (c *Catalog) diffSource(ctx context.Context, key string, a, b *Record) (SourceDiff, error) {
	d := SourceDiff{Source: key}
	sa, inA := a.Source(key)
	sb, inB := b.Source(key)
	var ia, ib []Item
	var err error
	if inA {
		if ia, err = c.Items(ctx, sa); err != nil {
			return d, err
		}
	}
	if inB {
		if ib, err = c.Items(ctx, sb); err != nil {
			return d, err
		}
	}
	d.Added, d.Removed, d.Changed = DiffItems(ia, ib)
	switch {
	case !inA:
		d.Status = "added"
	case !inB:
		d.Status = "removed"
	case sa.Tree == sb.Tree && sa.Items == sb.Items && len(d.Added)+len(d.Removed)+len(d.Changed) == 0:
		d.Status = "unchanged"
	default:
		d.Status = "changed"
	}
	return d, nil
}

// DiffItems compares two item lists by name. An item name that appears
// with several versions (e.g. two versions of one package) is compared as
// a set of versions.
func DiffItems(a, b []Item) (added, removed []Item, changed []ItemChange) {
	va, vb := versions(a), versions(b)
	for name, as := range va {
		bs, ok := vb[name]
		switch {
		case !ok:
			for _, v := range as {
				removed = append(removed, Item{name, v})
			}
		case len(as) == 1 && len(bs) == 1:
			if as[0] != bs[0] {
				changed = append(changed, ItemChange{name, as[0], bs[0]})
			}
		default:
			r, ad := setDiff(as, bs)
			for _, v := range r {
				removed = append(removed, Item{name, v})
			}
			for _, v := range ad {
				added = append(added, Item{name, v})
			}
		}
	}
	for name, bs := range vb {
		if _, ok := va[name]; !ok {
			for _, v := range bs {
				added = append(added, Item{name, v})
			}
		}
	}
	sortItems(added)
	sortItems(removed)
	sort.Slice(changed, func(i, j int) bool { return changed[i].Name < changed[j].Name })
	return added, removed, changed
}

func versions(items []Item) map[string][]string {
	m := map[string][]string{}
	for _, it := range items {
		m[it.Name] = append(m[it.Name], it.Version)
	}
	return m
}

func setDiff(a, b []string) (onlyA, onlyB []string) {
	inA, inB := map[string]bool{}, map[string]bool{}
	for _, v := range a {
		inA[v] = true
	}
	for _, v := range b {
		inB[v] = true
	}
	for _, v := range a {
		if !inB[v] {
			onlyA = append(onlyA, v)
		}
	}
	for _, v := range b {
		if !inA[v] {
			onlyB = append(onlyB, v)
		}
	}
	return onlyA, onlyB
}

func sortItems(is []Item) {
	sort.Slice(is, func(i, j int) bool {
		if is[i].Name != is[j].Name {
			return is[i].Name < is[j].Name
		}
		return is[i].Version < is[j].Version
	})
}
