package reposyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Rewrite returns the repos.yaml data with the source of every entry for
// which sourceFor returns true set to that URL, as the entry's own
// variable (which wins over group and top-level ones). Everything else is
// kept byte for byte: variables, groups, dest, ref, comments, blank
// lines, anchors and merge keys. The edits are made in the text, then
// checked by walking the result; a file whose shape the text edits cannot
// handle (block scalars, multi-line plain scalars) is re-encoded from its
// nodes instead, which keeps the same content and comments but not the
// layout.
func Rewrite(data []byte, sourceFor func(name string) (string, bool)) ([]byte, error) {
	doc, err := decode(data)
	if doc == nil {
		return data, err
	}
	f := Walk(doc)
	if len(f.Problems) > 0 {
		p := f.Problems[0]
		return nil, fmt.Errorf("line %d: %s", p.Line, p.Msg)
	}
	want := map[string]string{}
	var edits []edit
	text := newText(data)
	ok := true
	for _, g := range f.Groups {
		for _, e := range g.Entries {
			u, set := sourceFor(e.Name)
			if !set {
				continue
			}
			want[e.Name] = u
			ed, good := e.sourceEdit(text, u)
			ok = ok && good
			edits = append(edits, ed)
		}
	}
	if ok {
		out := text.apply(edits)
		if same(f, out, want) {
			return out, nil
		}
	}
	return reencode(doc, f, want)
}

// decode parses data's first document; nil when there is none.
func decode(data []byte) (*yaml.Node, error) {
	var doc yaml.Node
	if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err
	}
	return &doc, nil
}

// same reports whether out has f's structure and values, except that
// each entry in want has exactly that as its own source.
func same(f *File, out []byte, want map[string]string) bool {
	doc, err := decode(out)
	if err != nil || doc == nil {
		return false
	}
	g := Walk(doc)
	return len(g.Problems) == 0 && g.summary(nil) == f.summary(want)
}

// summary is a canonical dump of the structure and values; with want, as
// if each entry in it had its own source set to that URL.
func (f *File) summary(want map[string]string) string {
	var b strings.Builder
	vars := func(vs []Var, src *string) {
		for _, v := range vs {
			if src != nil && v.Name == "source" {
				continue
			}
			fmt.Fprintf(&b, " %q=%q", v.Name, v.Text())
		}
		if src != nil {
			fmt.Fprintf(&b, " source=%q", *src)
		}
		b.WriteByte('\n')
	}
	vars(f.Vars, nil)
	for _, g := range f.Groups {
		fmt.Fprintf(&b, "group %q", g.Name)
		vars(g.Vars, nil)
		for _, e := range g.Entries {
			fmt.Fprintf(&b, "  entry %q", e.Name)
			vs := slices.Clone(e.Vars)
			slices.SortFunc(vs, func(a, b Var) int { return strings.Compare(a.Name, b.Name) })
			if u, ok := want[e.Name]; ok {
				vars(vs, &u)
			} else {
				vars(vs, ownSource(e))
			}
		}
	}
	return b.String()
}

func ownSource(e *Entry) *string {
	for _, v := range e.Vars {
		if v.Name == "source" {
			s := v.Text()
			return &s
		}
	}
	return nil
}

// edit replaces text[start:end] with s.
type edit struct {
	start, end int
	s          string
}

// text is a document with its line offsets, to turn node positions into
// byte offsets.
type text struct {
	data  []byte
	lines []int // byte offset of each line's start
}

func newText(data []byte) *text {
	t := &text{data: data, lines: []int{0}}
	for i, c := range data {
		if c == '\n' {
			t.lines = append(t.lines, i+1)
		}
	}
	return t
}

// offset returns the byte offset of n's position (yaml.v3 counts columns
// in characters), or -1.
func (t *text) offset(n *yaml.Node) int {
	if n.Line < 1 || n.Line > len(t.lines) {
		return -1
	}
	off := t.lines[n.Line-1]
	for c := 1; c < n.Column; c++ {
		if off >= len(t.data) || t.data[off] == '\n' {
			return -1
		}
		_, size := utf8.DecodeRune(t.data[off:])
		off += size
	}
	return off
}

func (t *text) apply(edits []edit) []byte {
	slices.SortFunc(edits, func(a, b edit) int { return b.start - a.start })
	out := slices.Clone(t.data)
	for _, e := range edits {
		out = slices.Concat(out[:e.start], []byte(e.s), out[e.end:])
	}
	return out
}

// sourceEdit is the text edit that gives e its own source u; false when
// the entry's shape needs the node re-encoder.
func (e *Entry) sourceEdit(t *text, u string) (edit, bool) {
	q := strconv.Quote(u)
	v := e.pair.Value
	if e.pair.Owner != e.Group.node || v.Kind == yaml.DocumentNode {
		return edit{}, false
	}
	switch {
	case v.Kind == yaml.AliasNode: // glance: *os → glance: {<<: *os, source: "u"}
		start := t.offset(v)
		end := scalarEnd(t.data, start, false)
		if start < 0 || end < 0 {
			return edit{}, false
		}
		return edit{start, end, "{<<: " + string(t.data[start:end]) + ", source: " + q + "}"}, true
	case IsNull(v):
		start := t.offset(v)
		if start < 0 {
			return edit{}, false
		}
		if v.Value == "" { // "stdlib:" → "stdlib: {source: "u"}"
			return edit{start, start, " {source: " + q + "}"}, true
		}
		end := scalarEnd(t.data, start, false) // "stdlib: ~"
		return edit{start, end, "{source: " + q + "}"}, end > start
	case v.Kind != yaml.MappingNode:
		return edit{}, false
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		if k := v.Content[i]; k.Value == "source" && k.ShortTag() != "!!merge" {
			val := v.Content[i+1]
			start := t.offset(val)
			if val.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 || start < 0 {
				return edit{}, false
			}
			end := scalarEnd(t.data, start, v.Style&yaml.FlowStyle != 0)
			return edit{start, end, q}, end > start
		}
	}
	start := t.offset(v)
	if start < 0 {
		return edit{}, false
	}
	if v.Style&yaml.FlowStyle != 0 { // {ref: x} → {source: "u", ref: x}
		sep := ", "
		if len(v.Content) == 0 {
			sep = ""
		}
		return edit{start + 1, start + 1, "source: " + q + sep}, t.data[start] == '{'
	}
	// A block mapping: a line of its own before the first key, at its
	// indentation (the mapping itself starts at its anchor, if any).
	if len(v.Content) == 0 {
		return edit{}, false
	}
	first := v.Content[0]
	if start = t.offset(first); start < 0 {
		return edit{}, false
	}
	line := t.lines[first.Line-1]
	indent := string(t.data[line:start])
	if strings.TrimLeft(indent, " ") != "" {
		return edit{}, false // a key on the entry's line ("- a: b"): not a repos.yaml shape
	}
	return edit{line, line, indent + "source: " + q + "\n"}, true
}

// scalarEnd returns the offset just past the scalar or alias starting at
// start: a quoted string through its closing quote, a plain one (or an
// alias) up to a comment or the end of the line (in flow context also up
// to ',', '}' or ']'). -1 when it cannot tell.
func scalarEnd(data []byte, start int, flow bool) int {
	if start < 0 || start >= len(data) {
		return -1
	}
	switch data[start] {
	case '"':
		for i := start + 1; i < len(data) && data[i] != '\n'; i++ {
			switch data[i] {
			case '\\':
				i++
			case '"':
				return i + 1
			}
		}
		return -1 // multi-line: let the re-encoder handle it
	case '\'':
		for i := start + 1; i < len(data) && data[i] != '\n'; i++ {
			if data[i] == '\'' {
				if i+1 < len(data) && data[i+1] == '\'' {
					i++
					continue
				}
				return i + 1
			}
		}
		return -1
	}
	end := start
	for i := start; i < len(data) && data[i] != '\n'; i++ {
		c := data[i]
		if c == '#' && i > start && (data[i-1] == ' ' || data[i-1] == '\t') {
			break
		}
		if (flow || data[start] == '*') && (c == ',' || c == '}' || c == ']') {
			break
		}
		if data[start] == '*' && (c == ' ' || c == '\t') {
			break
		}
		if c != ' ' && c != '\t' && c != '\r' {
			end = i + 1
		}
	}
	return end
}

// reencode sets the sources on the nodes and encodes the document.
func reencode(doc *yaml.Node, f *File, want map[string]string) ([]byte, error) {
	for _, g := range f.Groups {
		for _, e := range g.Entries {
			if u, ok := want[e.Name]; ok {
				e.setSource(u)
			}
		}
	}
	plainMergeKeys(doc)
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding repos.yaml: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// plainMergeKeys drops the explicit tag of merge keys, which yaml.v3
// would otherwise write as "!!merge <<".
func plainMergeKeys(n *yaml.Node) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i]; k.ShortTag() == "!!merge" {
				k.Tag = ""
			}
		}
	}
	for _, c := range n.Content {
		plainMergeKeys(c)
	}
}

// setSource makes u the entry's own source on the nodes.
func (e *Entry) setSource(u string) {
	val := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: u}
	p := e.pair
	if p.Owner != e.Group.node {
		// The entry came in through a merge key: give the group an
		// explicit copy of it, which overrides the merged one.
		key := *p.Key
		owner := e.Group.node
		owner.Content = append(owner.Content, &key, p.Value)
		p = Pair{Key: &key, Value: p.Value, Owner: owner, Index: len(owner.Content) - 2}
		e.pair = p
	}
	slot := &p.Owner.Content[p.Index+1]
	v := *slot
	switch {
	case v.Kind == yaml.AliasNode || (v.Kind == yaml.MappingNode && v.Anchor != ""):
		// nova: *defaults → nova: {<<: *defaults, source: u}, and
		// nova: &x {...} → nova: {<<: &x {...}, source: u}, so what
		// the anchor names stays as it was for its other aliases.
		merge := &yaml.Node{Kind: yaml.ScalarNode, Value: "<<"}
		*slot = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{merge, v, sourceKey(), val}}
	case v.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(v.Content); i += 2 {
			if k := v.Content[i]; k.Value == "source" && k.ShortTag() != "!!merge" {
				val.LineComment = v.Content[i+1].LineComment
				v.Content[i+1] = val
				return
			}
		}
		v.Content = append([]*yaml.Node{sourceKey(), val}, v.Content...)
	default: // null: an entry with no variables of its own
		*slot = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{sourceKey(), val}, Anchor: v.Anchor,
			HeadComment: v.HeadComment, LineComment: v.LineComment, FootComment: v.FootComment}
	}
}

func sourceKey() *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "source"}
}
