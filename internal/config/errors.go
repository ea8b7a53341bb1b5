package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mirrord/mirrord/internal/reposyaml"
)

// Error is one problem found in a configuration file. Load, Parse, LoadRepos
// and ParseRepos return one *Error, or several joined with errors.Join (one
// per line, in file order); use errors.As to inspect the first.
type Error struct {
	File string // file name as given to Load/Parse
	Line int    // 1-based; 0 when unknown
	Path string // key path such as "apt[0].keyring"; "" for the whole file
	Msg  string // full message, without the file:line prefix
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// errList collects problems found in one file.
type errList struct {
	file string
	errs []*Error
}

func (l *errList) add(line int, path, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.errs = append(l.errs, &Error{File: l.file, Line: line, Path: path, Msg: msg})
}

// err returns nil, the single error, or all errors joined in line order.
func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	sort.SliceStable(l.errs, func(i, j int) bool { return l.errs[i].Line < l.errs[j].Line })
	errs := make([]error, len(l.errs))
	for i, e := range l.errs {
		errs[i] = e
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return errors.Join(errs...)
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError rewrites a yaml.v3 parse error into an *Error.
func syntaxError(file string, err error) error {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Error{File: file, Line: line, Msg: m[2]}
	}
	return &Error{File: file, Msg: strings.TrimPrefix(msg, "yaml: ")}
}

// parseYAML parses exactly one YAML document and returns its root node, or
// nil when the input holds no document (empty or comments only).
func parseYAML(file string, data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, syntaxError(file, err)
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case err == nil:
		return nil, &Error{File: file, Line: extra.Line, Msg: "only one YAML document is allowed"}
	case !errors.Is(err, io.EOF):
		return nil, syntaxError(file, err)
	}
	if doc.Kind == yaml.DocumentNode {
		if len(doc.Content) == 0 {
			return nil, nil
		}
		return doc.Content[0], nil
	}
	return &doc, nil
}

// pair is one key/value of a mapping node.
type pair struct{ key, val *yaml.Node }

// pairs returns the key/value pairs of mapping n with YAML merge keys ("<<")
// expanded, the way repos.yaml is read (reposyaml.Pairs): explicit keys
// first (duplicates kept, so callers can report them), then merged keys not
// already present, earlier merge sources winning.
func (l *errList) pairs(n *yaml.Node, path string) []pair {
	ps, probs := reposyaml.Pairs(n)
	for _, p := range probs {
		l.add(p.Line, path, "%s: %s", where(path), p.Msg)
	}
	out := make([]pair, len(ps))
	for i, p := range ps {
		out[i] = pair{p.Key, p.Value}
	}
	return out
}

func deref(n *yaml.Node) *yaml.Node { return reposyaml.Deref(n) }

func isNull(n *yaml.Node) bool { return reposyaml.IsNull(n) }

// describe names what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string { return reposyaml.Describe(n) }

// where names a key path for messages; the root is "top level".
func where(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// joinPath appends a mapping key to a key path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// parentPath strips the last ".key" or "[i]" from a key path.
func parentPath(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}
