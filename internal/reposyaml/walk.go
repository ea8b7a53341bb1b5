// Package reposyaml reads the structure of stacktira's repos.yaml, the one
// walker both the config reader (internal/config) and the rewriter that
// points every entry at the mirror (Rewrite) use, so they agree on what a
// group, a variable and an entry are, and on anchors and merge keys.
//
// The format, as stacktira's own file has it:
//
//	destdir: 'modules/'            # top level: a scalar value is a variable
//	git_protocol: https
//	openstack:                     # top level: a mapping value is a group
//	  author: openstack            # in a group: a scalar value is a group variable
//	  nova:                        # in a group: a mapping (or empty) value is an entry
//	    source: "%{git_protocol}://git.example.org/%{author}/puppet-nova"
//	    dest: "%{destdir}nova"
//	    ref: stable/2024.1
//
// There is no "repos:" wrapper. Inside an entry every value is a scalar
// variable; source, dest and ref are variables like any other. Anchors,
// aliases and merge keys ("<<") are followed everywhere. Walk only finds
// the structure; interpolating %{var} is the reader's job.
package reposyaml

import (
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"
)

// Builtins are the variables every entry has and no file may set: the
// entry's key and its group's key.
var Builtins = []string{"name", "group"}

// File is the structure of one repos.yaml.
type File struct {
	Vars   []Var    // top-level variables, in file order
	Groups []*Group // in file order
	// Problems are the structural errors found, in walk order. A File
	// with problems still holds everything that was well-formed.
	Problems []Problem
}

// Var is one scalar variable.
type Var struct {
	Name  string
	Key   *yaml.Node // its key: Line is where it is defined
	Value *yaml.Node // a scalar, aliases followed; null for an empty value
}

// Text is the variable's value ("" when empty).
func (v Var) Text() string {
	if IsNull(v.Value) {
		return ""
	}
	return v.Value.Value
}

// Group is one top-level mapping.
type Group struct {
	Name    string
	Key     *yaml.Node
	Vars    []Var
	Entries []*Entry
	node    *yaml.Node // the group's mapping
}

// Entry is one repository of a group.
type Entry struct {
	Name  string
	Group *Group
	Key   *yaml.Node // Line is the entry's line
	Vars  []Var
	pair  Pair
}

// Problem is one structural error: Path names where ("" top level,
// "GROUP", "GROUP.ENTRY").
type Problem struct {
	Line int
	Path string
	Msg  string
}

// Walk returns the structure under root, the document's top node (nil for
// an empty file).
func Walk(root *yaml.Node) *File {
	f := &File{}
	if root == nil {
		return f
	}
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return f
		}
		root = root.Content[0]
	}
	root = Deref(root)
	if IsNull(root) {
		return f
	}
	if root.Kind != yaml.MappingNode {
		f.fail(root.Line, "", "the top level must be a mapping of variables and groups, got %s", Describe(root))
		return f
	}
	for _, p := range f.unique(root, "") {
		k, v := p.Key.Value, Deref(p.Value)
		switch v.Kind {
		case yaml.ScalarNode:
			f.Vars = append(f.Vars, f.variable(p, ""))
		case yaml.MappingNode:
			f.group(p, v)
		default:
			f.fail(p.Key.Line, k, "top level: %q is %s: a top-level value is a variable (a scalar) or a group (a mapping)", k, Describe(v))
		}
	}
	return f
}

func (f *File) fail(line int, path, format string, args ...any) {
	f.Problems = append(f.Problems, Problem{Line: line, Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (f *File) group(p Pair, n *yaml.Node) {
	g := &Group{Name: p.Key.Value, Key: p.Key, node: n}
	f.Groups = append(f.Groups, g)
	for _, q := range f.unique(n, g.Name) {
		v := Deref(q.Value)
		switch {
		case v.Kind == yaml.MappingNode || IsNull(v):
			f.entry(g, q, v)
		case v.Kind == yaml.ScalarNode:
			g.Vars = append(g.Vars, f.variable(q, g.Name))
		default:
			f.fail(q.Key.Line, g.Name+"."+q.Key.Value, "group %q: %q is %s: in a group a value is a variable (a scalar) or an entry (a mapping, or empty)", g.Name, q.Key.Value, Describe(v))
		}
	}
}

func (f *File) entry(g *Group, p Pair, n *yaml.Node) {
	e := &Entry{Name: p.Key.Value, Group: g, Key: p.Key, pair: p}
	g.Entries = append(g.Entries, e)
	if IsNull(n) {
		return
	}
	path := g.Name + "." + e.Name
	for _, q := range f.unique(n, path) {
		v := Deref(q.Value)
		if v.Kind == yaml.ScalarNode {
			e.Vars = append(e.Vars, f.variable(q, path))
			continue
		}
		hint := ""
		if q.Key.Value == "repos" {
			hint = ` (the nested "repos:" format is gone: groups are top-level keys and their entries sit directly in them)`
		}
		f.fail(q.Key.Line, path+"."+q.Key.Value, "entry %q (group %q): variable %q: expected a scalar, got %s%s", e.Name, g.Name, q.Key.Value, Describe(v), hint)
	}
}

// variable makes a Var of p, whose value is a scalar.
func (f *File) variable(p Pair, path string) Var {
	k := p.Key.Value
	for _, b := range Builtins {
		if k == b {
			f.fail(p.Key.Line, join(path, k), "%s: %q is a built-in variable and cannot be set", where(path), k)
		}
	}
	return Var{Name: k, Key: p.Key, Value: Deref(p.Value)}
}

// unique returns the pairs of mapping n with merge keys expanded, reporting
// merge errors, non-string and duplicate keys.
func (f *File) unique(n *yaml.Node, path string) []Pair {
	pairs, probs := Pairs(n)
	for _, pr := range probs {
		f.fail(pr.Line, path, "%s: %s", where(path), pr.Msg)
	}
	var out []Pair
	seen := map[string]int{}
	for _, p := range pairs {
		k := p.Key.Value
		switch {
		case p.Key.Kind != yaml.ScalarNode || IsNull(p.Key):
			f.fail(p.Key.Line, path, "%s: keys must be strings, got %s", where(path), Describe(p.Key))
		case seen[k] > 0:
			f.fail(p.Key.Line, join(path, k), "duplicate key %q in %s (first at line %d)", k, where(path), seen[k])
		default:
			seen[k] = p.Key.Line
			out = append(out, p)
		}
	}
	return out
}

// Pair is one key/value of a mapping. Owner is the mapping node that holds
// it literally and Index the key's position in Owner.Content: for a pair
// that came in through a merge key, Owner is the merged mapping.
type Pair struct {
	Key, Value *yaml.Node
	Owner      *yaml.Node
	Index      int
}

// Pairs returns the key/value pairs of mapping n with YAML merge keys
// ("<<") expanded as YAML 1.1 defines them: explicit keys first
// (duplicates kept, so callers can report them), then merged keys not
// already present, earlier merge sources winning. Problems are merge
// values that are not mappings.
func Pairs(n *yaml.Node) ([]Pair, []Problem) {
	var probs []Problem
	out := pairs(n, &probs, 0)
	return out, probs
}

// maxMergeDepth bounds nested merges; YAML anchors cannot form a cycle,
// but a bound keeps a hostile file from recursing deeply.
const maxMergeDepth = 64

func pairs(n *yaml.Node, probs *[]Problem, depth int) []Pair {
	var out, merged []Pair
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.ShortTag() == "!!merge" {
			merged = append(merged, mergeSources(v, probs, depth+1)...)
			continue
		}
		out = append(out, Pair{Key: k, Value: v, Owner: n, Index: i})
	}
	have := make(map[string]bool, len(out))
	for _, p := range out {
		have[p.Key.Value] = true
	}
	for _, p := range merged {
		if !have[p.Key.Value] {
			have[p.Key.Value] = true
			out = append(out, p)
		}
	}
	return out
}

func mergeSources(v *yaml.Node, probs *[]Problem, depth int) []Pair {
	v = Deref(v)
	if depth > maxMergeDepth {
		*probs = append(*probs, Problem{Line: v.Line, Msg: "merge keys nested too deeply"})
		return nil
	}
	switch v.Kind {
	case yaml.MappingNode:
		return pairs(v, probs, depth)
	case yaml.SequenceNode:
		var out []Pair
		for _, item := range v.Content {
			if item = Deref(item); item.Kind != yaml.MappingNode {
				*probs = append(*probs, Problem{Line: item.Line, Msg: "<< expects a mapping or a sequence of mappings, got " + Describe(item)})
				continue
			}
			out = append(out, pairs(item, probs, depth)...)
		}
		return out
	}
	*probs = append(*probs, Problem{Line: v.Line, Msg: "<< expects a mapping or a sequence of mappings, got " + Describe(v)})
	return nil
}

// Deref follows alias nodes to the anchored node.
func Deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

// IsNull reports whether n is an empty value (`key:`, `~`, `null`).
func IsNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// Describe names what a node is, for "expected X, got Y" messages.
func Describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		return describeScalar(n)
	}
	return "an unsupported node"
}

func describeScalar(n *yaml.Node) string {
	kind := map[string]string{
		"!!str":       "a string",
		"!!int":       "an integer",
		"!!float":     "a number",
		"!!bool":      "a boolean",
		"!!timestamp": "a timestamp",
		"!!binary":    "binary data",
	}[n.ShortTag()]
	if n.ShortTag() == "!!null" {
		return "null"
	}
	if kind == "" {
		kind = "a " + n.ShortTag() + " value"
	}
	return fmt.Sprintf("%s (%s)", kind, strconv.Quote(n.Value))
}

func where(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
