package config

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// decoder fills Go values from yaml nodes strictly: every mapping key must
// match a `yaml` struct tag and every value must have the field's type. It
// records the line of every key path it sets so validation can point at it.
type decoder struct {
	errList
	lines map[string]int  // key path -> line of its key (or sequence item)
	nulls map[string]bool // key paths present with a null value
}

func newDecoder(file string) *decoder {
	return &decoder{errList: errList{file: file}, lines: map[string]int{"": 1}, nulls: map[string]bool{}}
}

var (
	durationType = reflect.TypeFor[Duration]()
	byteSizeType = reflect.TypeFor[ByteSize]()
)

// value decodes n into v. Null leaves v at its zero value.
func (d *decoder) value(n *yaml.Node, v reflect.Value, path string) {
	n = deref(n)
	if isNull(n) {
		return
	}
	switch {
	case v.Type() == durationType:
		d.duration(n, v, path)
	case v.Type() == byteSizeType:
		d.byteSize(n, v, path)
	case v.Kind() == reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		d.value(n, p.Elem(), path)
		v.Set(p)
	case v.Kind() == reflect.Struct:
		d.mapping(n, v, path)
	case v.Kind() == reflect.Slice:
		d.sequence(n, v, path)
	default:
		d.scalar(n, v, path)
	}
}

func (d *decoder) typeErr(n *yaml.Node, path, want, hint string) {
	d.add(n.Line, path, "%s: expected %s, got %s%s", where(path), want, describe(n), hint)
}

// fieldsOf maps yaml key names to struct field indexes, in field order.
func fieldsOf(t reflect.Type) (keys []string, index map[string]int) {
	index = map[string]int{}
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		keys = append(keys, name)
		index[name] = i
	}
	return keys, index
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.typeErr(n, path, "a mapping", "")
		return
	}
	keys, index := fieldsOf(v.Type())
	seen := map[string]int{}
	for _, p := range d.pairs(n, path) {
		key := p.key.Value
		child := joinPath(path, key)
		i, ok := index[key]
		switch {
		case p.key.Kind != yaml.ScalarNode:
			d.add(p.key.Line, path, "%s: keys must be strings, got %s", where(path), describe(p.key))
		case !ok:
			d.unknownKey(p.key, path, keys)
		case seen[key] > 0:
			d.add(p.key.Line, child, "duplicate key %q in %s (first at line %d)", key, where(path), seen[key])
		default:
			seen[key] = p.key.Line
			d.lines[child] = p.key.Line
			d.nulls[child] = isNull(deref(p.val))
			d.value(p.val, v.Field(i), child)
		}
	}
}

func (d *decoder) unknownKey(k *yaml.Node, path string, known []string) {
	msg := fmt.Sprintf("unknown key %q", k.Value)
	if path != "" {
		msg += " in " + path
	}
	if s := suggest(k.Value, known); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	d.add(k.Line, joinPath(path, k.Value), "%s", msg)
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		hint := ""
		if n.Kind == yaml.ScalarNode {
			hint = fmt.Sprintf(" (write [%s] for a one-item list)", n.Value)
		}
		d.typeErr(n, path, "a sequence", hint)
		return
	}
	if len(n.Content) == 0 {
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, item := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = item.Line
		d.value(item, s.Index(i), p)
	}
	v.Set(s)
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.String:
		d.str(n, v, path)
	case reflect.Bool:
		d.typed(n, v, path, "!!bool", "a boolean (true or false)")
	case reflect.Int:
		d.typed(n, v, path, "!!int", "an integer")
	default:
		panic(fmt.Sprintf("config: unsupported field type %s at %s", v.Type(), path))
	}
}

// str accepts any non-boolean scalar, keeping its text as written, so that
// values such as `ref: 2024.1` stay strings.
func (d *decoder) str(n *yaml.Node, v reflect.Value, path string) {
	switch {
	case n.Kind != yaml.ScalarNode:
		d.typeErr(n, path, "a string", "")
	case n.ShortTag() == "!!bool":
		d.typeErr(n, path, "a string", ` (quote it: "`+n.Value+`")`)
	default:
		v.SetString(n.Value)
	}
}

// typed decodes a scalar that must carry the given resolved tag.
func (d *decoder) typed(n *yaml.Node, v reflect.Value, path, tag, want string) {
	if n.Kind != yaml.ScalarNode || n.ShortTag() != tag {
		d.typeErr(n, path, want, "")
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.add(n.Line, path, "%s: invalid value %q: %v", path, n.Value, err)
	}
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path string) {
	dur, err := parseDuration(n)
	if err != nil {
		d.add(n.Line, path, "%s: %v", path, err)
		return
	}
	v.Set(reflect.ValueOf(Duration{dur}))
}

func (d *decoder) byteSize(n *yaml.Node, v reflect.Value, path string) {
	b, err := parseByteSize(n)
	if err != nil {
		d.add(n.Line, path, "%s: %v", path, err)
		return
	}
	v.SetInt(b)
}

// suggest returns the known key closest to key, or "" when none is close.
func suggest(key string, known []string) string {
	lower := strings.ToLower(key)
	best, bestDist := "", 0
	for _, k := range known {
		d := levenshtein(lower, k)
		if d > max(1, len(k)/3) {
			if len(lower) < 4 || !strings.HasPrefix(k, lower) {
				continue
			}
			d = len(k) // prefix match: only if nothing closer
		}
		if best == "" || d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
