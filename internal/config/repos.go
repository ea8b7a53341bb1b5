package config

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/mirrord/mirrord/internal/reposyaml"
)

// A repos.yaml file is stacktira's list of git repositories (see package
// reposyaml for the format and its walker):
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
// Every value may use %{var}, looked up entry > group > top level, with the
// built-ins %{name} (entry key) and %{group} (group key). source, dest and ref
// are ordinary variables that become the repo's URL, Dest and Ref; a group
// or the top level may set them for all its entries (a source template
// such as "https://h/%{author}/puppet-%{name}").

// LoadRepos reads and resolves a repos.yaml file.
func LoadRepos(path string) ([]GitRepo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading repos file: %w", err)
	}
	return ParseRepos(path, data)
}

// ParseRepos is LoadRepos from bytes; name is used in messages and as each
// repo's File. The result is sorted by Name.
func ParseRepos(name string, data []byte) ([]GitRepo, error) {
	root, err := parseYAML(name, data)
	if err != nil || root == nil {
		return nil, err
	}
	f := reposyaml.Walk(root)
	p := &reposParser{errList: errList{file: name}, seen: map[string]repoRef{}}
	for _, pr := range f.Problems {
		p.add(pr.Line, pr.Path, "%s", pr.Msg)
	}
	top := varsOf(f.Vars)
	for _, g := range f.Groups {
		gvars := varsOf(g.Vars)
		for _, e := range g.Entries {
			r := &resolver{name: e.Name, group: g.Name, line: e.Key.Line, layers: []vars{varsOf(e.Vars), gvars, top}}
			p.entry(r, g.Name+"."+e.Name)
		}
	}
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

func varsOf(vs []reposyaml.Var) vars {
	out := make(vars, len(vs))
	for _, v := range vs {
		out[v.Name] = varDef{value: v.Text(), line: v.Key.Line}
	}
	return out
}

// repoRef remembers where a repo name was first defined.
type repoRef struct {
	group string
	line  int
}

type reposParser struct {
	errList
	seen map[string]repoRef
	out  []GitRepo
}

func (p *reposParser) entry(r *resolver, path string) {
	if !ValidName(r.name) {
		p.add(r.line, path, "%s: invalid repo name %q: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit", r, r.name)
		return
	}
	if prev, dup := p.seen[r.name]; dup {
		p.add(r.line, path, "%s: duplicate repo name, already defined in group %q at line %d (entry names are clone URLs on the mirror, so they are unique across groups)", r, prev.group, prev.line)
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
	repo.Group, repo.File, repo.Line = r.group, p.file, r.line
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
