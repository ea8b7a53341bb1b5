package yum

import (
	"path"
	"sort"
	"strings"

	"github.com/mirrord/mirrord/internal/rpmver"
)

// resolver answers which packages provide a capability: their Provides
// (versioned), and files, from primary and (for file dependencies primary
// does not cover) filelists.
type resolver struct {
	provides map[string][]provider // capability name → providers
	files    map[string][]*pkg     // path → packages shipping it
}

type provider struct {
	p   *pkg
	dep rpmver.Dep
}

func newResolver(pkgs []*pkg) *resolver {
	r := &resolver{provides: map[string][]provider{}, files: map[string][]*pkg{}}
	for _, p := range pkgs {
		for _, d := range p.Provides {
			r.provides[d.Name] = append(r.provides[d.Name], provider{p: p, dep: d})
		}
		for _, f := range p.Files {
			r.addFile(f, p)
		}
	}
	return r
}

func (r *resolver) addFile(file string, p *pkg) {
	for _, q := range r.files[file] {
		if q == p {
			return
		}
	}
	r.files[file] = append(r.files[file], p)
}

// missingFiles lists the file dependencies of pkgs that primary's file
// lists do not provide (filelists has to answer those).
func (r *resolver) missingFiles(pkgs []*pkg) map[string]bool {
	out := map[string]bool{}
	for _, p := range pkgs {
		for _, d := range p.Requires {
			if d.IsFile() && len(r.files[d.Name]) == 0 && len(r.provides[d.Name]) == 0 {
				out[d.Name] = true
			}
		}
	}
	return out
}

// candidates returns every package satisfying the requirement.
func (r *resolver) candidates(req rpmver.Dep) []*pkg {
	var out []*pkg
	for _, pr := range r.provides[req.Name] {
		if pr.dep.Satisfies(req) {
			out = append(out, pr.p)
		}
	}
	if req.IsFile() {
		out = append(out, r.files[req.Name]...)
	}
	return out
}

// closure selects the packages matching patterns, and roots, and,
// withDeps, what they need, recursively. For each requirement not already met by a selected
// package it adds the best candidate: the newest version of the provider
// whose name is the capability (else the first name in sort order),
// preferring the requirer's arch and noarch. Rich (boolean) dependencies
// pull in a provider for every capability they name: a superset, which
// is safe. It returns the selection in primary order, the requirements
// nothing in the repository meets, and the patterns that matched nothing.
func closure(pkgs []*pkg, patterns []string, roots []*pkg, withDeps bool, res *resolver) (sel []*pkg, unresolved, unmatched []string) {
	chosen := map[*pkg]bool{}
	var queue []*pkg
	add := func(p *pkg) {
		if !chosen[p] {
			chosen[p] = true
			queue = append(queue, p)
		}
	}
	for _, pat := range patterns {
		n := 0
		for _, p := range pkgs {
			if ok, _ := path.Match(pat, p.Name); ok {
				add(p)
				n++
			}
		}
		if n == 0 {
			unmatched = append(unmatched, pat)
		}
	}
	for _, p := range roots {
		add(p)
	}
	missing := map[string]bool{}
	for withDeps && len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, req := range requirements(p) {
			cands := res.candidates(req)
			if len(cands) == 0 {
				missing[req.String()] = true
				continue
			}
			if !anyChosen(cands, chosen) {
				add(best(cands, req.Name, p.Arch))
			}
		}
	}
	for p := range chosen {
		sel = append(sel, p)
	}
	sort.Slice(sel, func(i, j int) bool { return sel[i].Index < sel[j].Index })
	for m := range missing {
		unresolved = append(unresolved, m)
	}
	sort.Strings(unresolved)
	return sel, unresolved, unmatched
}

// requirements lists what p needs from the repository: its Requires minus
// rpmlib() features, with rich dependencies split into the capabilities
// they name.
func requirements(p *pkg) []rpmver.Dep {
	var out []rpmver.Dep
	for _, d := range p.Requires {
		switch {
		case strings.HasPrefix(d.Name, "rpmlib("):
		case d.IsRich():
			out = append(out, richNames(d.Name)...)
		default:
			out = append(out, d)
		}
	}
	return out
}

// richNames extracts the capabilities a boolean dependency names, e.g.
// "(foo >= 1.0 if bar)" → foo >= 1.0, bar.
func richNames(expr string) []rpmver.Dep {
	fields := strings.Fields(strings.NewReplacer("(", " ( ", ")", " ) ").Replace(expr))
	var out []rpmver.Dep
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		switch f {
		case "(", ")", "and", "or", "if", "else", "unless", "with", "without":
			continue
		}
		d := rpmver.Dep{Name: f}
		if i+2 < len(fields) {
			if flags, ok := operatorFlags(fields[i+1]); ok {
				d.Flags, d.EVR = flags, rpmver.ParseEVR(fields[i+2])
				i += 2
			}
		}
		out = append(out, d)
	}
	return out
}

func operatorFlags(op string) (rpmver.Flags, bool) {
	switch op {
	case "=", "==":
		return rpmver.EQ, true
	case "<":
		return rpmver.LT, true
	case "<=":
		return rpmver.LE, true
	case ">":
		return rpmver.GT, true
	case ">=":
		return rpmver.GE, true
	}
	return 0, false
}

func anyChosen(cands []*pkg, chosen map[*pkg]bool) bool {
	for _, c := range cands {
		if chosen[c] {
			return true
		}
	}
	return false
}

// best picks one candidate deterministically (see closure).
func best(cands []*pkg, capability, arch string) *pkg {
	rank := func(p *pkg) int {
		r := 0
		if p.Name != capability {
			r += 2
		}
		if p.Arch != arch && p.Arch != "noarch" {
			r++
		}
		return r
	}
	b := cands[0]
	for _, c := range cands[1:] {
		rc, rb := rank(c), rank(b)
		switch {
		case rc != rb:
			if rc < rb {
				b = c
			}
		case c.Name != b.Name:
			if c.Name < b.Name {
				b = c
			}
		case c.EVR.Compare(b.EVR) > 0:
			b = c
		}
	}
	return b
}
