package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"sort"
	"strings"
	"time"

	"github.com/mirrord/mirrord/internal/store"
)

// IDFormat is the snapshot ID layout: UTC YYYYMMDDTHHMMSSZ, as used by apt's
// --snapshot option and snapshot.debian.org.
const IDFormat = "20060102T150405Z"

// FormatID returns the ID for t.
func FormatID(t time.Time) string { return t.UTC().Format(IDFormat) }

// ParseID parses an ID; it fails on anything that is not exactly IDFormat.
func ParseID(id string) (time.Time, error) {
	t, err := time.Parse(IDFormat, id)
	if err != nil || FormatID(t) != id {
		return time.Time{}, fmt.Errorf("snapshot ID %q: want UTC YYYYMMDDTHHMMSSZ: %w", id, ErrBadID)
	}
	return t, nil
}

// Record is a snapshot: an immutable record of every source at one moment.
type Record struct {
	ID      string         `json:"id"`
	Created time.Time      `json:"created"`
	Sources []SourceRecord `json:"sources"`
}

// SourceRecord names the tree (and items) of one source in a snapshot.
type SourceRecord struct {
	Kind     string            `json:"kind"`
	Name     string            `json:"name"`
	Upstream string            `json:"upstream,omitempty"`
	Tree     store.Digest      `json:"tree"`
	Files    int               `json:"files"`
	Size     int64             `json:"size"`
	Items    store.Digest      `json:"item_list,omitempty"` // the item list blob
	NItems   int               `json:"items,omitempty"`     // how many items (a count, as everywhere in mirrord's JSON)
	Refs     map[string]string `json:"refs,omitempty"`
	Meta     map[string]string `json:"meta,omitempty"`
	Synced   time.Time         `json:"synced"`
}

// Key is the source's "KIND/NAME".
func (s *SourceRecord) Key() string { return s.Kind + "/" + s.Name }

// Source returns the record of source "KIND/NAME".
func (r *Record) Source(key string) (*SourceRecord, bool) {
	for i := range r.Sources {
		if r.Sources[i].Key() == key {
			return &r.Sources[i], true
		}
	}
	return nil, false
}

// Size is the total size of all sources' files.
func (r *Record) Size() int64 {
	var n int64
	for _, s := range r.Sources {
		n += s.Size
	}
	return n
}

// Item is one user-visible unit of a source for diffs: a package with its
// version, a git ref with its commit, a file with its digest.
type Item struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// EncodeItems returns the canonical form of items ("name\tversion\n", sorted).
func EncodeItems(items []Item) []byte {
	is := append([]Item(nil), items...)
	sort.Slice(is, func(i, j int) bool {
		if is[i].Name != is[j].Name {
			return is[i].Name < is[j].Name
		}
		return is[i].Version < is[j].Version
	})
	var b bytes.Buffer
	for _, it := range is {
		fmt.Fprintf(&b, "%s\t%s\n", clean(it.Name), clean(it.Version))
	}
	return b.Bytes()
}

// clean keeps a name or version on its line of the item list.
func clean(s string) string {
	if !strings.ContainsAny(s, "\t\n") {
		return s
	}
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' {
			return ' '
		}
		return r
	}, s)
}

// DecodeItems parses EncodeItems' output.
func DecodeItems(r io.Reader) ([]Item, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var out []Item
	for sc.Scan() {
		name, ver, ok := strings.Cut(sc.Text(), "\t")
		if !ok {
			return nil, fmt.Errorf("items: malformed line %q", sc.Text())
		}
		out = append(out, Item{Name: name, Version: ver})
	}
	return out, sc.Err()
}

// PutItems stores items as a blob and returns its digest.
func PutItems(ctx context.Context, blobs store.Blobs, items []Item) (store.Digest, error) {
	data := EncodeItems(items)
	d := store.DigestOf(data)
	if _, err := blobs.Put(ctx, bytes.NewReader(data), store.Expect{Digest: d, Size: int64(len(data))}); err != nil {
		return "", fmt.Errorf("storing items: %w", err)
	}
	return d, nil
}

// SameContent reports whether s and o serve the same thing: everything but
// the time they were synced.
func (s *SourceRecord) SameContent(o *SourceRecord) bool {
	return s.Kind == o.Kind && s.Name == o.Name && s.Upstream == o.Upstream &&
		s.Tree == o.Tree && s.Files == o.Files && s.Size == o.Size &&
		s.Items == o.Items && s.NItems == o.NItems &&
		maps.Equal(s.Refs, o.Refs) && maps.Equal(s.Meta, o.Meta)
}

// SameContent reports whether r has exactly the sources srcs (in any order)
// with the same content, so a snapshot of srcs would repeat r.
func (r *Record) SameContent(srcs []SourceRecord) bool {
	if len(r.Sources) != len(srcs) {
		return false
	}
	for i := range srcs {
		have, ok := r.Source(srcs[i].Key())
		if !ok || !have.SameContent(&srcs[i]) {
			return false
		}
	}
	return true
}

// UnmarshalJSON reads a source record, also as written before item counts
// were named "items" (then the item list's digest; the count was
// "n_items").
func (s *SourceRecord) UnmarshalJSON(data []byte) error {
	type plain SourceRecord
	var v struct {
		plain
		Items  json.RawMessage `json:"items,omitempty"`
		NItems *int            `json:"n_items,omitempty"`
	}
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	*s = SourceRecord(v.plain)
	if len(v.Items) == 0 {
		return nil
	}
	if v.Items[0] == '"' { // legacy: the digest
		if err := json.Unmarshal(v.Items, &s.Items); err != nil {
			return err
		}
		if v.NItems != nil {
			s.NItems = *v.NItems
		}
		return nil
	}
	return json.Unmarshal(v.Items, &s.NItems)
}
