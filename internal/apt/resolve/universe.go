// Package resolve chooses the packages an install request needs the way
// apt's own solver (pkgDepCache::MarkInstall) chooses them, so that a
// filtered mirror holds exactly what apt on a node would fetch.
//
// What it models, from apt: each package name and architecture has one
// candidate, its newest version (or a pinned one); dependencies are
// followed depth first, in field order (Pre-Depends, Depends, then
// Recommends when asked); an OR group already satisfied by a chosen
// package adds nothing; otherwise the alternatives are tried in order,
// and for each, the real package and its providers are ranked as apt's
// CompareProviders does (same name as the dependency, Essential,
// Important, native architecture, then the configured architectures,
// Priority, then the package apt met last in the indices). A candidate
// that Conflicts with or Breaks a chosen package, or whose own hard
// dependencies cannot be met, is skipped. Multi-Arch follows the spec:
// "foreign" packages satisfy dependencies from every architecture,
// "allowed" ones satisfy "name:any", "same" ones may be co-installed with
// the same version; any other two architectures of one package conflict.
//
// Where apt would instead unmark an earlier choice and hand the result to
// its problem resolver, this package keeps the earlier choice and tries
// the next alternative: the result is always consistent.
package resolve

import (
	"fmt"
	"strings"

	"github.com/mirrord/mirrord/internal/debver"
)

// Package is one binary package version as an index lists it.
type Package struct {
	Name, Version, Arch string // Arch "all" is installed as the native architecture
	MultiArch           debver.MultiArch
	Essential           bool
	Important           bool
	Priority            string // required, important, standard, optional, extra; "" when absent
	// Relation fields in control-file syntax.
	PreDepends, Depends, Recommends, Conflicts, Breaks, Provides string
}

// key is a package of apt's cache: a name and an architecture ("any" for
// the pseudo package that ":any" dependencies target).
type key struct{ name, arch string }

func (k key) String() string { return k.name + ":" + k.arch }

// ver is one version of a package with its relations parsed.
type ver struct {
	*Package
	idx      int // index in the slice given to New
	pkg      *pkg
	v        debver.Version
	prio     int
	pre, dep []debver.Alternatives
	rec      []debver.Alternatives
	neg      []debver.Relation // Conflicts and Breaks
	breaks   []debver.Relation // Breaks alone
	provides []debver.Relation // explicit Provides
}

// pkg is one package of the cache: its versions and candidate.
type pkg struct {
	key      key
	id       int // creation order, apt's last tie-break between providers
	versions []*ver
	cand     *ver
}

// provision says that ver provides a package, at a version or unversioned.
type provision struct {
	by      *ver
	op      debver.Op // OpNone or OpEq
	version debver.Version
}

// Universe is a set of indices as apt on a node sees them. It is
// read-only once made; Install may be called from several goroutines.
type Universe struct {
	native   string
	archs    []string // native first
	pkgs     map[key]*pkg
	provides map[key][]provision
	all      []*ver
	// Warnings lists relation fields that could not be parsed (apt
	// ignores such a package's relation; so does the resolver).
	Warnings []string
}

// New indexes pkgs for a node of the given architectures (native first).
// Later packages of the same name, architecture and version are ignored,
// as apt keeps the first index's copy. pin, when not nil, names the
// version to take as the candidate of a package name instead of the
// newest (used to reproduce a node's installed state).
func New(pkgs []*Package, archs []string, pin map[string]string) *Universe {
	u := &Universe{native: archs[0], archs: archs, pkgs: map[key]*pkg{}, provides: map[key][]provision{}}
	for i, p := range pkgs {
		u.add(i, p)
	}
	for _, p := range u.sortedPkgs() {
		p.cand = candidate(p, pin)
	}
	return u
}

func (u *Universe) add(i int, p *Package) {
	arch := p.Arch
	if arch == "all" {
		arch = u.native
	}
	if !u.knownArch(arch) {
		return // not an architecture of this node
	}
	v := &ver{Package: p, idx: i, prio: priority(p.Priority)}
	var err error
	if v.v, err = debver.Parse(p.Version); err != nil {
		u.Warnings = append(u.Warnings, fmt.Sprintf("%s %s: %v (package ignored)", p.Name, p.Version, err))
		return
	}
	k := key{p.Name, arch}
	pk := u.pkg(k)
	for _, o := range pk.versions {
		if o.v.Compare(v.v) == 0 {
			return
		}
	}
	pk.versions = append(pk.versions, v)
	v.pkg = pk
	u.all = append(u.all, v)
	v.pre = u.parse(v, "Pre-Depends", p.PreDepends)
	v.dep = u.parse(v, "Depends", p.Depends)
	for _, g := range u.parse(v, "Conflicts", p.Conflicts) {
		v.neg = append(v.neg, g...)
	}
	for _, g := range u.parse(v, "Breaks", p.Breaks) {
		v.neg = append(v.neg, g...)
		v.breaks = append(v.breaks, g...)
	}
	v.rec = u.parse(v, "Recommends", p.Recommends)
	u.addProvides(v)
}

// parse parses one relation field, registering its targets in the
// order apt's cache generator creates them.
func (u *Universe) parse(v *ver, field, val string) []debver.Alternatives {
	if strings.TrimSpace(val) == "" {
		return nil
	}
	groups, err := debver.ParseRelations(val)
	if err != nil {
		u.Warnings = append(u.Warnings, fmt.Sprintf("%s %s: %s: %v (field ignored)", v.Name, v.Version, field, err))
		return nil
	}
	for _, g := range groups {
		for _, r := range g {
			u.pkg(u.target(v, r))
		}
	}
	return groups
}

func (u *Universe) addProvides(v *ver) {
	arch := v.pkg.key.arch
	if v.Provides != "" {
		provs, err := debver.ParseProvides(v.Provides)
		if err != nil {
			u.Warnings = append(u.Warnings, fmt.Sprintf("%s %s: Provides: %v (field ignored)", v.Name, v.Version, err))
		}
		v.provides = provs
		for _, r := range provs {
			archs := []string{arch}
			if v.MultiArch == debver.MAForeign {
				archs = u.archs
			}
			for _, a := range archs {
				u.provide(key{r.Name, a}, provision{by: v, op: r.Op, version: r.Version})
			}
		}
	}
	switch v.MultiArch {
	case debver.MAForeign:
		for _, a := range u.archs {
			if a != arch {
				u.provide(key{v.Name, a}, provision{by: v, op: debver.OpEq, version: v.v})
			}
		}
	case debver.MAAllowed:
		u.provide(key{v.Name, "any"}, provision{by: v, op: debver.OpEq, version: v.v})
	}
}

func (u *Universe) provide(k key, p provision) {
	u.pkg(k)
	u.provides[k] = append(u.provides[k], p)
}

func (u *Universe) pkg(k key) *pkg {
	p := u.pkgs[k]
	if p == nil {
		p = &pkg{key: k, id: len(u.pkgs)}
		u.pkgs[k] = p
	}
	return p
}

func (u *Universe) knownArch(a string) bool {
	for _, x := range u.archs {
		if x == a {
			return true
		}
	}
	return false
}

// target is the package a relation of v points at.
func (u *Universe) target(v *ver, r debver.Relation) key {
	switch r.ArchQual {
	case "":
		return key{r.Name, v.pkg.key.arch}
	case "native":
		return key{r.Name, u.native}
	}
	return key{r.Name, r.ArchQual}
}

func (u *Universe) sortedPkgs() []*pkg {
	out := make([]*pkg, len(u.pkgs))
	for _, p := range u.pkgs {
		out[p.id] = p
	}
	return out
}

// candidate is the newest version (the first listed among equals), or
// the pinned one when pin names a version the package has.
func candidate(p *pkg, pin map[string]string) *ver {
	if want, ok := pin[p.key.name]; ok {
		for _, v := range p.versions {
			if v.Version == want {
				return v
			}
		}
	}
	var best *ver
	for _, v := range p.versions {
		if best == nil || v.v.Compare(best.v) > 0 {
			best = v
		}
	}
	return best
}

// priority maps a Priority field to apt's internal order (lower wins;
// a package without one ranks first, as in apt).
func priority(s string) int {
	switch strings.ToLower(s) {
	case "required":
		return 1
	case "important":
		return 2
	case "standard":
		return 3
	case "optional":
		return 4
	case "extra":
		return 5
	}
	return 0
}

// Has reports whether the universe holds a version of name for arch
// (an "all" package counts for the native architecture).
func (u *Universe) Has(name, arch string) bool {
	if arch == "" || arch == "all" {
		arch = u.native
	}
	p := u.pkgs[key{name, arch}]
	return p != nil && p.cand != nil
}

// HasVersion reports whether the universe holds that version of name
// for arch.
func (u *Universe) HasVersion(name, arch, version string) bool {
	if arch == "" || arch == "all" {
		arch = u.native
	}
	p := u.pkgs[key{name, arch}]
	if p == nil {
		return false
	}
	for _, v := range p.versions {
		if v.Version == version {
			return true
		}
	}
	return false
}
