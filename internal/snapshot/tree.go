package snapshot

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/mirrord/mirrord/internal/store"
)

// Entry is one file of a source's tree.
type Entry struct {
	Path   string       `json:"path"`
	Digest store.Digest `json:"digest"`
	Size   int64        `json:"size"`
}

// Tree is the sorted file list of one source at one moment. Trees are stored
// as blobs in a line format ("<digest> <size> <path>\n", sorted by path), so
// a source whose files did not change produces the same tree blob again.
type Tree struct {
	Entries []Entry
}

// CleanPath checks that p is a relative, clean, slash-separated path with no
// "..", "." or empty segments, no NUL and no newline, and returns it.
func CleanPath(p string) (string, error) {
	if p == "" || strings.HasPrefix(p, "/") || strings.ContainsAny(p, "\x00\n\r\\") {
		return "", fmt.Errorf("path %q: must be relative and free of NUL, newline and backslash", p)
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", fmt.Errorf("path %q: empty, \".\" or \"..\" segment", p)
		}
	}
	if path.Clean(p) != p {
		return "", fmt.Errorf("path %q: not clean", p)
	}
	return p, nil
}

// NewTree validates and sorts entries; duplicate or unsafe paths are errors.
func NewTree(entries []Entry) (*Tree, error) {
	es := append([]Entry(nil), entries...)
	sort.Slice(es, func(i, j int) bool { return es[i].Path < es[j].Path })
	for i, e := range es {
		if _, err := CleanPath(e.Path); err != nil {
			return nil, err
		}
		if _, err := store.ParseDigest(string(e.Digest)); err != nil {
			return nil, fmt.Errorf("tree entry %q: %w", e.Path, err)
		}
		if e.Size < 0 {
			return nil, fmt.Errorf("tree entry %q: negative size", e.Path)
		}
		if i > 0 && es[i-1].Path == e.Path {
			return nil, fmt.Errorf("tree: duplicate path %q", e.Path)
		}
	}
	return &Tree{Entries: es}, nil
}

// Lookup returns the entry at p.
func (t *Tree) Lookup(p string) (Entry, bool) {
	i := sort.Search(len(t.Entries), func(i int) bool { return t.Entries[i].Path >= p })
	if i < len(t.Entries) && t.Entries[i].Path == p {
		return t.Entries[i], true
	}
	return Entry{}, false
}

// IsDir reports whether some entry lies below directory p ("" is the root).
func (t *Tree) IsDir(p string) bool {
	if p == "" {
		return len(t.Entries) > 0
	}
	prefix := p + "/"
	i := sort.Search(len(t.Entries), func(i int) bool { return t.Entries[i].Path >= prefix })
	return i < len(t.Entries) && strings.HasPrefix(t.Entries[i].Path, prefix)
}

// List returns the names directly under directory p, directories with a
// trailing slash, sorted.
func (t *Tree) List(p string) []string {
	prefix := ""
	if p != "" {
		prefix = p + "/"
	}
	i := sort.Search(len(t.Entries), func(i int) bool { return t.Entries[i].Path >= prefix })
	var out []string
	for ; i < len(t.Entries) && strings.HasPrefix(t.Entries[i].Path, prefix); i++ {
		rest := t.Entries[i].Path[len(prefix):]
		name := rest
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			name = rest[:j+1]
		}
		if len(out) == 0 || out[len(out)-1] != name {
			out = append(out, name)
		}
	}
	return out
}

// Size is the sum of entry sizes.
func (t *Tree) Size() int64 {
	var n int64
	for _, e := range t.Entries {
		n += e.Size
	}
	return n
}

// Encode returns the canonical serialisation of t.
func (t *Tree) Encode() []byte {
	var b bytes.Buffer
	for _, e := range t.Entries {
		b.WriteString(string(e.Digest))
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(e.Size, 10))
		b.WriteByte(' ')
		b.WriteString(e.Path)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// DecodeTree parses the canonical serialisation.
func DecodeTree(r io.Reader) (*Tree, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var es []Entry
	for line := 1; sc.Scan(); line++ {
		parts := strings.SplitN(sc.Text(), " ", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("tree line %d: want \"digest size path\"", line)
		}
		size, err := strconv.ParseInt(parts[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("tree line %d: size: %w", line, err)
		}
		es = append(es, Entry{Digest: store.Digest(parts[0]), Size: size, Path: parts[2]})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading tree: %w", err)
	}
	return NewTree(es)
}

// PutTree stores t as a blob and returns its digest.
func PutTree(ctx context.Context, blobs store.Blobs, t *Tree) (store.Digest, error) {
	data := t.Encode()
	d := store.DigestOf(data)
	if _, err := blobs.Put(ctx, bytes.NewReader(data), store.Expect{Digest: d, Size: int64(len(data))}); err != nil {
		return "", fmt.Errorf("storing tree: %w", err)
	}
	return d, nil
}
