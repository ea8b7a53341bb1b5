package config

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// A repos.yaml file (stacktira style) groups git repositories:
//
//	github: https://github.com            # top-level scalar keys are variables
//	repos:
//	  puppetlabs:                         # group
//	    author: puppetlabs                # group variables
//	    source: "%{github}/%{author}/puppetlabs-%{name}"
//	    repos:
//	      stdlib: {}                      # entry; the key is the repo name
//	      apt: {ref: 9.1.0}               # entry variables override the group's
//
// Every value may use %{var}, looked up entry > group > top level, with the
// built-ins %{name} (entry key) and %{group} (group key). source, dest and ref
// are ordinary variables that become the repo's URL, Dest and Ref.

// LoadRepos reads and resolves a repos.yaml file.
func LoadRepos(path string) ([]GitRepo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading repos file: %w", err)
	}
	return ParseRepos(path, data)
}

// ParseRepos is LoadRepos from bytes; name is used in messages. The result is
// sorted by Name.
func ParseRepos(name string, data []byte) ([]GitRepo, error) {
	root, err := parseYAML(name, data)
	if err != nil || root == nil {
		return nil, err
	}
	p := &reposParser{errList: errList{file: name}, seen: map[string]repoRef{}}
	p.root(root)
	if err := p.err(); err != nil {
		return nil, err
	}
	slices.SortFunc(p.out, func(a, b GitRepo) int { return strings.Compare(a.Name, b.Name) })
	return p.out, nil
}

// varDef is one variable definition and the line it is on.
type varDef struct {
	value string
	line  int
}

type vars map[string]varDef

// repoRef remembers where a repo name was first defined.
type repoRef struct {
	group string
	line  int
}

type reposParser struct {
	errList
	top  vars
	seen map[string]repoRef
	out  []GitRepo
}

func (p *reposParser) root(n *yaml.Node) {
	top, groups := p.section(n, "", true)
	p.top = top
	if groups == nil || isNull(groups) {
		return
	}
	if groups.Kind != yaml.MappingNode {
		p.add(groups.Line, "repos", "repos: expected a mapping of groups, got %s", describe(groups))
		return
	}
	for _, kv := range p.uniquePairs(groups, "repos") {
		p.group(kv.key.Value, kv.val)
	}
}

func (p *reposParser) group(name string, n *yaml.Node) {
	path := "repos." + name
	gvars, entries := p.section(n, path, true)
	if entries == nil || isNull(entries) {
		return
	}
	if entries.Kind != yaml.MappingNode {
		p.add(entries.Line, path+".repos", "%s.repos: expected a mapping of repos, got %s", path, describe(entries))
		return
	}
	for _, kv := range p.uniquePairs(entries, path+".repos") {
		evars, _ := p.section(kv.val, path+".repos."+kv.key.Value, false)
		r := &resolver{name: kv.key.Value, group: name, line: kv.key.Line, layers: []vars{evars, gvars, p.top}}
		p.entry(r, path+".repos."+kv.key.Value)
	}
}

// uniquePairs returns the pairs of mapping n, reporting duplicate or
// non-string keys.
func (p *reposParser) uniquePairs(n *yaml.Node, path string) []pair {
	var out []pair
	seen := map[string]int{}
	for _, kv := range p.pairs(n, path) {
		k := kv.key.Value
		switch {
		case kv.key.Kind != yaml.ScalarNode:
			p.add(kv.key.Line, path, "%s: keys must be strings, got %s", path, describe(kv.key))
		case seen[k] > 0:
			p.add(kv.key.Line, joinPath(path, k), "duplicate key %q in %s (first at line %d)", k, where(path), seen[k])
		default:
			seen[k] = kv.key.Line
			out = append(out, kv)
		}
	}
	return out
}

// section reads a mapping of scalar variables; when withRepos is set, a
// "repos" key is returned separately instead of being a variable.
func (p *reposParser) section(n *yaml.Node, path string, withRepos bool) (vars, *yaml.Node) {
	vs := vars{}
	if n = deref(n); isNull(n) {
		return vs, nil
	}
	if n.Kind != yaml.MappingNode {
		p.add(n.Line, path, "%s: expected a mapping, got %s", where(path), describe(n))
		return vs, nil
	}
	var repos *yaml.Node
	for _, kv := range p.uniquePairs(n, path) {
		k, val := kv.key.Value, deref(kv.val)
		switch {
		case k == "repos" && withRepos:
			repos = val
		case k == "name" || k == "group":
			p.add(kv.key.Line, joinPath(path, k), "%s: %q is a built-in variable and cannot be set", where(path), k)
		case val.Kind != yaml.ScalarNode:
			p.add(kv.key.Line, joinPath(path, k), "%s: variable %q: expected a scalar, got %s", where(path), k, describe(val))
		case isNull(val):
			vs[k] = varDef{line: kv.key.Line}
		default:
			vs[k] = varDef{value: val.Value, line: kv.key.Line}
		}
	}
	return vs, repos
}

func (p *reposParser) entry(r *resolver, path string) {
	if !ValidName(r.name) {
		p.add(r.line, path, "%s: invalid repo name %q: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit", r, r.name)
		return
	}
	if prev, dup := p.seen[r.name]; dup {
		p.add(r.line, path, "%s: duplicate repo name, already defined in group %q at line %d", r, prev.group, prev.line)
		return
	}
	p.seen[r.name] = repoRef{group: r.group, line: r.line}
	if _, ok := r.lookup("source"); !ok {
		p.add(r.line, path, "%s: no source: set source on the repo, its group or at top level", r)
		return
	}
	repo, err := r.repo()
	if err != nil {
		p.errs = append(p.errs, &Error{File: p.file, Line: err.line, Path: path, Msg: fmt.Sprintf("%s: %s", r, err.msg)})
		return
	}
	p.out = append(p.out, repo)
}

// resolveError is a problem found while resolving one entry.
type resolveError struct {
	line int
	msg  string
}

func (r *resolver) fail(line int, format string, args ...any) *resolveError {
	return &resolveError{line: line, msg: fmt.Sprintf(format, args...)}
}

// resolver interpolates the variables of one repos.yaml entry.
type resolver struct {
	name, group string
	line        int    // line of the entry's key
	layers      []vars // entry, group, top level
}

func (r *resolver) String() string {
	return fmt.Sprintf("repo %q (group %q)", r.name, r.group)
}

// repo resolves source, dest and ref into a validated GitRepo.
func (r *resolver) repo() (GitRepo, *resolveError) {
	g := GitRepo{Name: r.name}
	for _, f := range []struct {
		key string
		dst *string
	}{{"source", &g.URL}, {"dest", &g.Dest}, {"ref", &g.Ref}} {
		if _, ok := r.lookup(f.key); !ok {
			continue
		}
		v, err := r.expand(f.key, nil)
		if err != nil {
			return g, err
		}
		*f.dst = v
	}
	return g, r.check(g)
}

func (r *resolver) check(g GitRepo) *resolveError {
	if err := checkGitURL(g.URL); err != nil {
		def, _ := r.lookup("source")
		return r.fail(def.line, "source: %v", err)
	}
	if g.Dest == "" {
		return nil
	}
	if err := checkRelPath(g.Dest); err != nil {
		def, _ := r.lookup("dest")
		return r.fail(def.line, "dest: %v", err)
	}
	return nil
}

func (r *resolver) lookup(k string) (varDef, bool) {
	switch k {
	case "name":
		return varDef{value: r.name, line: r.line}, true
	case "group":
		return varDef{value: r.group, line: r.line}, true
	}
	for _, l := range r.layers {
		if d, ok := l[k]; ok {
			return d, true
		}
	}
	return varDef{}, false
}

// expand returns the interpolated value of variable k, which must exist;
// stack holds the variables being expanded, outermost first.
func (r *resolver) expand(k string, stack []string) (string, *resolveError) {
	def, _ := r.lookup(k)
	if k == "name" || k == "group" {
		return def.value, nil
	}
	return r.interpolate(def, append(stack, k))
}

func (r *resolver) interpolate(def varDef, stack []string) (string, *resolveError) {
	var b strings.Builder
	s := def.value
	for {
		i := strings.Index(s, "%{")
		if i < 0 {
			b.WriteString(s)
			return b.String(), nil
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return "", r.fail(def.line, "unterminated %%{ in %s", varContext(stack))
		}
		v, err := r.ref(s[i+2:i+j], def, stack)
		if err != nil {
			return "", err
		}
		b.WriteString(s[:i])
		b.WriteString(v)
		s = s[i+j+1:]
	}
}

// ref expands a %{name} reference found in def.
func (r *resolver) ref(name string, def varDef, stack []string) (string, *resolveError) {
	if _, ok := r.lookup(name); !ok {
		return "", r.fail(def.line, "unknown variable %%{%s} in %s", name, varContext(stack))
	}
	if i := slices.Index(stack, name); i >= 0 {
		chain := append(slices.Clone(stack[i:]), name)
		return "", r.fail(def.line, "variable cycle %%{%s} in %s", strings.Join(chain, "} -> %{"), stack[0])
	}
	return r.expand(name, stack)
}

// varContext names the variable being expanded and, if nested, where from.
func varContext(stack []string) string {
	last := stack[len(stack)-1]
	if len(stack) == 1 {
		return last
	}
	return fmt.Sprintf("%s (used by %s)", last, strings.Join(stack[:len(stack)-1], " -> "))
}
