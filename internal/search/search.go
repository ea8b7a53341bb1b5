// Package search answers "which snapshots contain package NAME (at version
// V)?" from an index the syncer keeps, without reading any snapshot's item
// list at query time.
//
// The index is per source, in the store's Meta:
//
//	search/state              the ID of the newest snapshot indexed
//	search/KIND/NAME          one source's index
//
// A source's index numbers the distinct item lists the source had, in
// snapshot order ("generations"; each is an item-list digest), and records
// for every (name, version) the generation spans it was present in.
// Packages persist across many snapshots, so a span covers many of them and
// the index grows with the churn, not with snapshots × packages. A query
// maps the spans back to item-list digests; the caller maps digests to the
// snapshots whose records name them (records are small and already in
// memory).
//
// Update is the only writer; the syncer calls it after each commit while
// it holds the sync lock. It indexes every snapshot newer than search/state,
// so snapshots written before the index existed are caught up by the next
// sync. Rewriting an index and then the state is idempotent: a crash in
// between re-applies snapshots whose lists are already the last
// generation, which changes nothing.
package search

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

const (
	prefix   = "search"
	stateKey = prefix + "/state"
	header   = "mirrord-search-index 1"
)

// span is the generations [from, to) an item was present in; to is -1
// while it still is.
type span struct{ from, to int }

type entry struct {
	version string
	spans   []span
}

// sourceIndex is one source's index.
type sourceIndex struct {
	gens  []store.Digest
	items map[string][]*entry // name → one entry per version
}

func newSourceIndex() *sourceIndex { return &sourceIndex{items: map[string][]*entry{}} }

func sourceKey(src string) string { return prefix + "/" + src }

// apply records that the source's item list is now items (digest d).
func (si *sourceIndex) apply(d store.Digest, items []snapshot.Item) {
	if n := len(si.gens); n > 0 && si.gens[n-1] == d {
		return
	}
	g := len(si.gens)
	si.gens = append(si.gens, d)
	now := make(map[string]map[string]bool, len(items))
	for _, it := range items {
		vs := now[it.Name]
		if vs == nil {
			vs = map[string]bool{}
			now[it.Name] = vs
		}
		vs[it.Version] = true
	}
	for name, es := range si.items {
		for _, e := range es {
			if last := &e.spans[len(e.spans)-1]; last.to < 0 && !now[name][e.version] {
				last.to = g
			}
		}
	}
	for name, vs := range now {
		for v := range vs {
			si.open(name, v, g)
		}
	}
}

// open makes (name, version) present from generation g on.
func (si *sourceIndex) open(name, version string, g int) {
	for _, e := range si.items[name] {
		if e.version != version {
			continue
		}
		if e.spans[len(e.spans)-1].to >= 0 {
			e.spans = append(e.spans, span{g, -1})
		}
		return
	}
	si.items[name] = append(si.items[name], &entry{version: version, spans: []span{{g, -1}}})
}

// encode writes the index in its stored form: a header, one "gen DIGEST"
// line per generation, then "name\tversion\tFROM-TO,FROM-" lines (TO empty
// while open), sorted.
func (si *sourceIndex) encode() []byte {
	var b bytes.Buffer
	b.WriteString(header + "\n")
	for _, d := range si.gens {
		b.WriteString("gen " + string(d) + "\n")
	}
	names := make([]string, 0, len(si.items))
	for n := range si.items {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		es := si.items[n]
		sort.Slice(es, func(i, j int) bool { return es[i].version < es[j].version })
		for _, e := range es {
			b.WriteString(n + "\t" + e.version + "\t")
			for i, s := range e.spans {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.Itoa(s.from) + "-")
				if s.to >= 0 {
					b.WriteString(strconv.Itoa(s.to))
				}
			}
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

func decodeSourceIndex(r io.Reader) (*sourceIndex, error) {
	si := newSourceIndex()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		switch {
		case line == 1:
			if t != header {
				return nil, fmt.Errorf("line 1: want %q, got %q", header, t)
			}
		case strings.HasPrefix(t, "gen "):
			si.gens = append(si.gens, store.Digest(t[4:]))
		default:
			e, name, err := parseEntry(t, len(si.gens))
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", line, err)
			}
			si.items[name] = append(si.items[name], e)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if line == 0 {
		return nil, errors.New("empty index")
	}
	return si, nil
}

func parseEntry(t string, ngens int) (*entry, string, error) {
	f := strings.Split(t, "\t")
	if len(f) != 3 {
		return nil, "", fmt.Errorf("malformed entry %q", t)
	}
	e := &entry{version: f[1]}
	for _, sp := range strings.Split(f[2], ",") {
		a, b, ok := strings.Cut(sp, "-")
		from, err := strconv.Atoi(a)
		if !ok || err != nil || from < 0 || from >= ngens {
			return nil, "", fmt.Errorf("malformed span %q in %q", sp, t)
		}
		to := -1
		if b != "" {
			if to, err = strconv.Atoi(b); err != nil || to <= from || to > ngens {
				return nil, "", fmt.Errorf("malformed span %q in %q", sp, t)
			}
		}
		e.spans = append(e.spans, span{from, to})
	}
	return e, f[0], nil
}
