package resolve

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mirrord/mirrord/internal/debver"
)

// ErrUnsatisfiable marks a request that cannot be installed from the
// universe; the error's text names the chain of dependencies that fails.
var ErrUnsatisfiable = errors.New("cannot be installed")

// Options shape one Install.
type Options struct {
	Recommends bool // follow Recommends too, as apt does by default
}

// Selection is the outcome of Install.
type Selection struct {
	// Chosen holds the indices (into the slice given to New) of the
	// chosen package versions, in the order they were chosen.
	Chosen []int
	// Missing lists the dependencies no package of the universe could
	// ever satisfy (no package of the name exists at all): "relation
	// (of NAME)". A node must get those from another repository.
	Missing []string
}

// Request names a package to install: Name, with an optional
// architecture (empty: native).
type Request struct{ Name, Arch string }

// solver is the state of one Install.
type solver struct {
	u         *Universe
	opt       Options
	chosen    map[*pkg]*ver
	order     []*ver
	protected map[*pkg]bool
	discarded map[*pkg]bool // candidates apt would drop (unsatisfiable)
	missing   []string
	seen      map[string]bool
	why       map[*pkg]string // the first reason a package could not be installed
	depth     int
	// Indices of the chosen versions, for conflict checks: by package
	// name, by provided name, by the name a Conflicts or Breaks targets.
	// Entries are not removed when a choice is undone; users check
	// s.chosen.
	byName, byProv, negOn map[string][]*ver
	pos                   map[*ver]int // position in order
}

// Install chooses what installing reqs needs, as `apt-get install reqs`
// on a node without any installed package would. Like apt, it first marks
// every request, then follows each one's dependencies in the order of
// the requests. A request that cannot be installed is an
// ErrUnsatisfiable error naming the chain; the other requests' choices
// are still returned.
func (u *Universe) Install(reqs []Request, opt Options) (*Selection, error) {
	s := &solver{u: u, opt: opt, chosen: map[*pkg]*ver{}, protected: map[*pkg]bool{}, discarded: map[*pkg]bool{},
		seen: map[string]bool{}, why: map[*pkg]string{},
		byName: map[string][]*ver{}, byProv: map[string][]*ver{}, negOn: map[string][]*ver{}, pos: map[*ver]int{}}
	var roots []*pkg
	var errs []error
	for _, r := range reqs {
		arch := r.Arch
		if arch == "" || arch == "all" {
			arch = u.native
		}
		p := u.pkgs[key{r.Name, arch}]
		if p == nil || p.cand == nil {
			errs = append(errs, fmt.Errorf("%w: %s: no such package for %s in the indices", ErrUnsatisfiable, r.Name, arch))
			continue
		}
		if !s.protected[p] {
			s.protected[p] = true
			roots = append(roots, p)
		}
	}
	for _, p := range roots {
		if c := s.conflict(p.cand); c != "" {
			errs = append(errs, fmt.Errorf("%w: %s", ErrUnsatisfiable, c))
			continue
		}
		s.choose(p.cand)
	}
	for _, p := range roots {
		if s.chosen[p] == nil {
			continue
		}
		if !s.installDeps(p.cand, nil) {
			errs = append(errs, fmt.Errorf("%w: %s", ErrUnsatisfiable, s.reason(p.cand)))
		}
	}
	sel := &Selection{Missing: s.missing}
	for _, v := range s.order {
		if s.chosen[v.pkg] == v {
			sel.Chosen = append(sel.Chosen, v.idx)
		}
	}
	return sel, errors.Join(errs...)
}

func (s *solver) reason(v *ver) string {
	if r := s.why[v.pkg]; r != "" {
		return r
	}
	return fmt.Sprintf("%s %s", v.pkg.key, v.Version)
}

// markInstall is apt's MarkInstall for a dependency: it reports whether
// p's candidate is (now) chosen with its hard dependencies met.
func (s *solver) markInstall(p *pkg, chain *frame) bool {
	if s.chosen[p] != nil {
		return true
	}
	v := p.cand
	if v == nil || s.discarded[p] {
		return false
	}
	if s.depth > 3000 {
		return false
	}
	if g, ok := s.unsatisfiable(v); ok {
		s.discarded[p] = true
		s.fail(p, chain, fmt.Sprintf("%s %s depends on %s, which no candidate version satisfies", p.key, v.Version, g))
		return false
	}
	if c := s.conflict(v); c != "" {
		s.fail(p, chain, c)
		return false
	}
	s.choose(v)
	if !s.installDeps(v, chain) {
		delete(s.chosen, p)
		s.discarded[p] = true
		return false
	}
	return true
}

func (s *solver) fail(p *pkg, chain *frame, why string) {
	if s.why[p] == "" {
		s.why[p] = strings.Join(append(chain.render(), why), " -> ")
	}
}

// frame is one step of the dependency chain being followed: a package
// being installed, or the relation of its parent being followed. Chains
// are rendered only for errors.
type frame struct {
	up   *frame
	v    *ver
	kind string
	g    debver.Alternatives
}

func (f *frame) render() []string {
	var out []string
	for ; f != nil; f = f.up {
		if f.v != nil {
			out = append(out, fmt.Sprintf("%s %s", f.v.pkg.key, f.v.Version))
		} else {
			out = append(out, f.kind+" "+f.g.String())
		}
	}
	slices.Reverse(out)
	return out
}

// installDeps follows v's relations; false when a hard one fails.
func (s *solver) installDeps(v *ver, up *frame) bool {
	chain := &frame{up: up, v: v}
	type grp struct {
		g    debver.Alternatives
		hard bool
		kind string
	}
	var todo []grp
	for _, g := range v.pre {
		todo = append(todo, grp{g, true, "Pre-Depends"})
	}
	for _, g := range v.dep {
		todo = append(todo, grp{g, true, "Depends"})
	}
	if s.opt.Recommends {
		for _, g := range v.rec {
			todo = append(todo, grp{g, false, "Recommends"})
		}
	}
	// apt collects the groups not yet satisfied, then installs them.
	todo = slices.DeleteFunc(todo, func(t grp) bool { return s.satisfied(v, t.g) })
	for _, t := range todo {
		if s.satisfied(v, t.g) {
			continue
		}
		sols := s.solutions(v, t.g)
		if len(sols) == 0 && !s.known(v, t.g) {
			s.noteMissing(v, t.g) // for another repository to provide
			continue
		}
		ok := false
		s.depth++
		for _, c := range sols {
			if !t.hard && s.brokenByChosen(c) {
				// apt marks it, its problem resolver then drops it and
				// the Recommends stays unmet: try no other alternative.
				break
			}
			if s.markInstall(c.pkg, &frame{up: chain, kind: t.kind, g: t.g}) {
				ok = true
				break
			}
		}
		s.depth--
		if !ok && t.hard {
			if s.why[v.pkg] == "" {
				s.why[v.pkg] = s.groupReason(v, t.g, chain, t.kind, sols)
			}
			return false
		}
	}
	return true
}

// groupReason explains why no alternative of g could be chosen.
func (s *solver) groupReason(v *ver, g debver.Alternatives, chain *frame, kind string, sols []*ver) string {
	for _, c := range sols {
		if r := s.why[c.pkg]; r != "" {
			return r
		}
	}
	var have []string
	for _, r := range g {
		if p := s.u.pkgs[s.u.target(v, r)]; p != nil && p.cand != nil {
			have = append(have, fmt.Sprintf("%s has %s", p.key, p.cand.Version))
		}
	}
	msg := fmt.Sprintf("%s %s", kind, g)
	if len(have) > 0 {
		msg += " (" + strings.Join(have, "; ") + ")"
	} else {
		msg += " (not in the indices)"
	}
	return strings.Join(append(chain.render(), msg), " -> ")
}

// noteMissing records a group none of whose alternatives names anything
// the universe has.
func (s *solver) noteMissing(v *ver, g debver.Alternatives) {
	if m := g.String() + " (of " + v.Name + ")"; !s.seen[m] {
		s.seen[m] = true
		s.missing = append(s.missing, m)
	}
}

// unsatisfiable is apt's IsInstallOkDependenciesSatisfiableByCandidates:
// a hard group that neither a chosen package nor any candidate can meet.
func (s *solver) unsatisfiable(v *ver) (debver.Alternatives, bool) {
	for _, gs := range [][]debver.Alternatives{v.pre, v.dep} {
		for _, g := range gs {
			if !s.satisfied(v, g) && len(s.solutions(v, g)) == 0 && s.known(v, g) {
				return g, true
			}
		}
	}
	return nil, false
}

// known reports whether some alternative of g names a package the
// universe has at all: a dependency on something entirely absent is
// left to another repository rather than failing the install.
func (s *solver) known(v *ver, g debver.Alternatives) bool {
	for _, r := range g {
		k := s.u.target(v, r)
		if p := s.u.pkgs[k]; p != nil && (len(p.versions) > 0 || len(s.u.provides[k]) > 0) {
			return true
		}
	}
	return false
}

// satisfied reports whether a chosen package meets an alternative of g.
func (s *solver) satisfied(v *ver, g debver.Alternatives) bool {
	for _, r := range g {
		k := s.u.target(v, r)
		if p := s.u.pkgs[k]; p != nil {
			if c := s.chosen[p]; c != nil && r.SatisfiedBy(c.v) {
				return true
			}
		}
		for _, pr := range s.u.provides[k] {
			if s.chosen[pr.by.pkg] == pr.by && provSatisfies(r, pr) {
				return true
			}
		}
	}
	return false
}

func provSatisfies(r debver.Relation, pr provision) bool {
	if r.Op == debver.OpNone {
		return true
	}
	return pr.op == debver.OpEq && r.SatisfiedBy(pr.version)
}

// solutions lists the candidate versions that could satisfy g, in the
// order apt tries them: per alternative, ranked by compareProviders.
func (s *solver) solutions(v *ver, g debver.Alternatives) []*ver {
	var out []*ver
	for _, r := range g {
		k := s.u.target(v, r)
		var vs []*ver
		if p := s.u.pkgs[k]; p != nil && p.cand != nil && !s.discarded[p] && r.SatisfiedBy(p.cand.v) {
			vs = append(vs, p.cand)
		}
		for _, pr := range s.u.provides[k] {
			c := pr.by
			if c.pkg.cand == c && !s.discarded[c.pkg] && provSatisfies(r, pr) && !slices.Contains(vs, c) {
				vs = append(vs, c)
			}
		}
		sort.SliceStable(vs, func(i, j int) bool { return s.before(vs[i], vs[j], k.name) })
		for _, c := range vs {
			if len(out) == 0 || out[len(out)-1] != c {
				out = append(out, c)
			}
		}
	}
	return out
}

// before is apt's CompareProviders for a dependency on target.
func (s *solver) before(a, b *ver, target string) bool {
	if pa, pb := s.protected[a.pkg], s.protected[b.pkg]; pa != pb {
		return pa
	}
	if ga, gb := a.Name == target, b.Name == target; ga != gb {
		return ga
	}
	if a.Essential != b.Essential {
		return a.Essential
	}
	if a.Important != b.Important {
		return a.Important
	}
	if aa, ba := a.pkg.key.arch, b.pkg.key.arch; aa != ba {
		for _, x := range s.u.archs {
			if x == aa {
				return true
			}
			if x == ba {
				return false
			}
		}
	}
	if a.prio != b.prio {
		return a.prio < b.prio
	}
	return a.pkg.id > b.pkg.id
}

// choose records v as chosen.
func (s *solver) choose(v *ver) {
	s.chosen[v.pkg] = v
	if _, ok := s.pos[v]; ok {
		return // chosen before, undone, chosen again: indexed already
	}
	s.pos[v] = len(s.order)
	s.order = append(s.order, v)
	s.byName[v.Name] = append(s.byName[v.Name], v)
	for _, p := range v.provides {
		s.byProv[p.Name] = append(s.byProv[p.Name], v)
	}
	for _, r := range v.neg {
		s.negOn[r.Name] = append(s.negOn[r.Name], v)
	}
}

// related lists, in the order they were chosen, the chosen versions
// (other than v's package) that v could conflict with either way.
func (s *solver) related(v *ver) []*ver {
	var out []*ver
	seen := map[*ver]bool{}
	add := func(list []*ver) {
		for _, c := range list {
			if !seen[c] && s.chosen[c.pkg] == c && c.pkg != v.pkg {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	add(s.byName[v.Name])
	add(s.negOn[v.Name])
	for _, p := range v.provides {
		add(s.negOn[p.Name])
	}
	for _, r := range v.neg {
		add(s.byName[r.Name])
		add(s.byProv[r.Name])
	}
	slices.SortFunc(out, func(a, b *ver) int { return s.pos[a] - s.pos[b] })
	return out
}

// brokenByChosen reports whether apt's MarkInstall would accept v (its
// dependencies can be met, its own Conflicts and Breaks hit nothing
// chosen) although a chosen package Breaks it, which apt only notices
// afterwards (a chosen package's Conflicts it honours at once).
func (s *solver) brokenByChosen(v *ver) bool {
	if s.chosen[v.pkg] != nil || s.discarded[v.pkg] {
		return false
	}
	if _, bad := s.unsatisfiable(v); bad {
		return false
	}
	reverse := false
	for _, c := range s.related(v) {
		if _, ok := s.hits(v, c); ok {
			return false
		}
		if r, ok := s.hits(c, v); ok && s.isBreaks(c, r) {
			reverse = true
		}
	}
	return reverse
}

// isBreaks reports whether r is one of v's Breaks (not Conflicts).
func (s *solver) isBreaks(v *ver, r debver.Relation) bool {
	return slices.ContainsFunc(v.breaks, func(b debver.Relation) bool { return b.String() == r.String() })
}

// conflict describes why choosing v would break the chosen set: v
// conflicts with or breaks a chosen package, a chosen package conflicts
// with or breaks v, or another architecture of v's package is chosen
// and they are not Multi-Arch: same at one version.
func (s *solver) conflict(v *ver) string {
	for _, c := range s.related(v) {
		if r, ok := s.hits(v, c); ok {
			return fmt.Sprintf("%s %s conflicts with or breaks %s (%s %s is chosen)", v.pkg.key, v.Version, r, c.pkg.key, c.Version)
		}
		if r, ok := s.hits(c, v); ok {
			return fmt.Sprintf("%s %s, already chosen, conflicts with or breaks %s", c.pkg.key, c.Version, r)
		}
		if c.Name == v.Name && (c.MultiArch != debver.MASame || v.MultiArch != debver.MASame || c.v.Compare(v.v) != 0) {
			return fmt.Sprintf("%s %s cannot be installed beside %s %s (Multi-Arch: %s)", v.pkg.key, v.Version, c.pkg.key, c.Version, v.MultiArch)
		}
	}
	return ""
}

// hits reports which negative relation of a (if any) matches b. An
// unqualified Conflicts or Breaks applies to every architecture; a
// package never conflicts with itself, nor through what it provides.
func (s *solver) hits(a, b *ver) (debver.Relation, bool) {
	for _, r := range a.neg {
		if r.ArchQual != "" && s.u.target(a, r) != b.pkg.key {
			continue
		}
		if r.Name == b.Name && r.SatisfiedBy(b.v) && b.Name != a.Name {
			return r, true
		}
		for _, p := range b.provides {
			if p.Name == r.Name && p.Name != a.Name &&
				provSatisfies(r, provision{op: p.Op, version: p.Version}) {
				return r, true
			}
		}
	}
	return debver.Relation{}, false
}
