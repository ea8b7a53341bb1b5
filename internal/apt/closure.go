package apt

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strings"

	"github.com/mirrord/mirrord/internal/apt/resolve"
	"github.com/mirrord/mirrord/internal/textlist"
)

// ErrFilterUnmatched marks a filter pattern that selects nothing.
var ErrFilterUnmatched = errors.New("filter matches nothing")

// closureOptions say which packages a filter selects.
type closureOptions struct {
	patterns   []string
	deps       bool // follow Pre-Depends and Depends
	recommends bool // and Recommends
	node       *nodeList
	check      bool // prove the result installs alone
}

// closure returns the keys (binPkg.key) of the selected packages.
//
// Without deps: in every suite, the newest version per architecture of
// each package whose name matches a pattern.
//
// With deps, what apt on a node would install: for every prefix of the
// configured suites (a node may use bookworm alone, or bookworm and
// bookworm-updates) and every configured architecture as the node's
// native one (the others foreign), each matching package is installed
// alone with the resolver, and the union of the choices is kept. A
// matching package that cannot be installed fails the sync naming the
// chain; a dependency nothing in the indices is named like is a warning
// (another repository must provide it).
//
// A node list (filter_from) is installed as a whole, each listed package
// at its listed version, over all suites; a listed version the indices
// lack fails the sync. With check, the selection is then resolved again
// from itself alone, and anything it lacks is an error.
func closure(suites, archs []string, pkgs []*binPkg, opt closureOptions, log *slog.Logger) (map[string]bool, error) {
	var names []string
	if len(opt.patterns) > 0 {
		var err error
		if names, err = matchNames(suites, pkgs, opt.patterns); err != nil {
			return nil, err
		}
	}
	if opt.node != nil {
		if miss := opt.node.absent(pkgs); len(miss) > 0 {
			return nil, fmt.Errorf("%w: filter_from %s lists %d package versions the upstream does not have: %s", ErrNotUpstream, opt.node.file, len(miss), textlist.FirstN(miss, 50))
		}
	}
	sel := map[string]bool{}
	if !opt.deps && opt.node == nil {
		for _, p := range newestPerSuite(pkgs, names) {
			sel[p.key()] = true
		}
		return sel, nil
	}
	res := solve(suites, archs, pkgs, names, opt)
	if len(res.errs) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrUninstallable, textlist.FirstN(res.errs, 10))
	}
	if len(res.missing) > 0 {
		log.Warn("dependencies of filtered packages are not in the mirrored indices (another repository must provide them)",
			"count", len(res.missing), "missing", textlist.FirstN(res.missing, 20))
	}
	if !opt.check {
		return res.sel, nil
	}
	var subset []*binPkg
	for _, p := range pkgs {
		if res.sel[p.key()] {
			subset = append(subset, p)
		}
	}
	again := solve(suites, archs, subset, names, opt)
	problems := append(again.errs, again.missing...)
	if len(problems) > 0 {
		return nil, fmt.Errorf("%w: filter_check: the published subset alone cannot install what the filter asks for: %s", ErrUninstallable, textlist.FirstN(problems, 20))
	}
	log.Info("filter_check: every filtered package installs from the published subset alone", "packages", len(subset))
	return res.sel, nil
}

// ErrNotUpstream marks a filter_from entry the upstream does not carry.
var ErrNotUpstream = errors.New("listed packages are not in the upstream")

// solved is what solve found.
type solved struct {
	sel           map[string]bool
	errs, missing []string
}

// solve runs the resolver for the named roots (each alone, in every
// prefix view of the suites) and for the node list (all together, over
// every suite), for every architecture as the native one.
func solve(suites, archs []string, pkgs []*binPkg, names []string, opt closureOptions) solved {
	out := solved{sel: map[string]bool{}}
	seen := map[string]bool{}
	note := func(list *[]string, s string) {
		if !seen[s] {
			seen[s] = true
			*list = append(*list, s)
		}
	}
	ropt := resolve.Options{Recommends: opt.recommends}
	for k := range suites {
		view := viewOf(pkgs, suites[:k+1])
		last := k == len(suites)-1
		if len(names) == 0 && !last {
			continue
		}
		for i, native := range archs {
			order := append([]string{native}, slices.Delete(slices.Clone(archs), i, i+1)...)
			where := fmt.Sprintf("suites %s, %s", strings.Join(suites[:k+1], "+"), native)
			install := func(u *resolve.Universe, reqs []resolve.Request) {
				got, err := u.Install(reqs, ropt)
				if err != nil {
					note(&out.errs, where+": "+err.Error())
				}
				for _, i := range got.Chosen {
					out.sel[view[i].key()] = true
				}
				for _, m := range got.Missing {
					rel, _, _ := strings.Cut(m, " (of ")
					if !seen["missing\x00"+rel] {
						seen["missing\x00"+rel] = true
						out.missing = append(out.missing, m) // the first package that needs it
					}
				}
			}
			if len(names) > 0 {
				u := newResolveUniverse(view, order, nil)
				for _, name := range names {
					if u.Has(name, native) {
						install(u, []resolve.Request{{Name: name, Arch: native}})
					}
				}
			}
			if opt.node != nil && last {
				u := newResolveUniverse(view, order, opt.node.pins)
				var reqs []resolve.Request
				for _, name := range opt.node.names {
					if u.HasVersion(name, native, opt.node.pins[name]) {
						reqs = append(reqs, resolve.Request{Name: name, Arch: native})
					}
				}
				if len(reqs) > 0 {
					install(u, reqs)
				}
			}
		}
	}
	return out
}

// ErrUninstallable marks a filtered package whose dependencies the
// mirrored indices cannot satisfy.
var ErrUninstallable = errors.New("a filtered package cannot be installed from the mirrored indices")

// matchNames lists the package names the patterns select, in sorted
// order; a pattern that selects none is an error.
func matchNames(suites []string, pkgs []*binPkg, patterns []string) ([]string, error) {
	all := map[string]bool{}
	for _, p := range pkgs {
		all[p.Name] = true
	}
	var names, unmatched []string
	hit := map[string]bool{}
	for _, pat := range patterns {
		n := 0
		for name := range all {
			if ok, _ := path.Match(pat, name); ok {
				n++
				if !hit[name] {
					hit[name] = true
					names = append(names, name)
				}
			}
		}
		if n == 0 {
			unmatched = append(unmatched, pat)
		}
	}
	if len(unmatched) > 0 {
		return nil, fmt.Errorf("%w: filter pattern %s matches no package in suites %s; check the name (patterns are shell globs on package names)", ErrFilterUnmatched, textlist.Quote(unmatched), strings.Join(suites, ", "))
	}
	slices.Sort(names)
	return names, nil
}

// newestPerSuite picks, per suite, name and architecture, the newest
// version of each named package.
func newestPerSuite(pkgs []*binPkg, names []string) []*binPkg {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	newest := map[string]*binPkg{}
	var order []string
	for _, p := range pkgs {
		if !want[p.Name] {
			continue
		}
		k := p.suite + "\x00" + p.Name + "\x00" + p.Arch
		cur := newest[k]
		if cur == nil {
			order = append(order, k)
		}
		if cur == nil || newer(p, cur) {
			newest[k] = p
		}
	}
	out := make([]*binPkg, 0, len(order))
	for _, k := range order {
		out = append(out, newest[k])
	}
	return out
}

func newer(a, b *binPkg) bool {
	if a.verOK && b.verOK {
		return a.ver.Compare(b.ver) > 0
	}
	return a.verOK && !b.verOK
}

// viewOf lists the packages of the given suites, in suite order (the
// order apt on a node reads its sources in).
func viewOf(pkgs []*binPkg, suites []string) []*binPkg {
	var out []*binPkg
	for _, s := range suites {
		for _, p := range pkgs {
			if p.suite == s {
				out = append(out, p)
			}
		}
	}
	return out
}

// newResolveUniverse builds the resolver's view of pkgs.
func newResolveUniverse(pkgs []*binPkg, archs []string, pin map[string]string) *resolve.Universe {
	rs := make([]*resolve.Package, len(pkgs))
	for i, p := range pkgs {
		rs[i] = p.resolvePkg()
	}
	return resolve.New(rs, archs, pin)
}

// resolvePkg is the resolver's copy of p.
func (p *binPkg) resolvePkg() *resolve.Package {
	return &resolve.Package{Name: p.Name, Version: p.Version, Arch: p.Arch, MultiArch: p.MA,
		Essential: strings.EqualFold(p.Essential, "yes"), Important: strings.EqualFold(p.Important, "yes"), Priority: p.Priority,
		PreDepends: p.PreDepends, Depends: p.Depends, Recommends: p.Recommends, Conflicts: p.Conflicts, Breaks: p.Breaks, Provides: p.Provides}
}

// subset is what a filter keeps; a nil *subset keeps everything.
type subset struct {
	pkgs map[string]bool // binPkg.key of the selected binaries
	srcs map[string]bool // suite + "\x00" + source name
}

// hasPkg reports whether the binary package is kept.
func (s *subset) hasPkg(p *binPkg) bool { return s == nil || s.pkgs[p.key()] }

// hasSource reports whether the source package of suite is kept: the
// source of a kept binary.
func (s *subset) hasSource(suite, name string) bool {
	return s == nil || s.srcs[suite+"\x00"+strings.ToLower(name)]
}

// selectPackages returns the filter's subset, or nil when there is no
// filter (everything is mirrored).
func (r *run) selectPackages() (*subset, error) {
	if !r.filtered() {
		return nil, nil
	}
	var all []*binPkg
	for _, ix := range r.ixs {
		all = append(all, ix.pkgs...)
	}
	if len(r.s.filters) == 0 && r.node == nil { // retain alone: everything, trimmed
		sel := &subset{pkgs: map[string]bool{}, srcs: map[string]bool{}}
		for _, p := range all {
			sel.pkgs[p.key()] = true
		}
		r.retainNewest(sel, r.s.cfg.Retain.Versions)
		sel.addSources(all)
		return sel, nil
	}
	sel := &subset{srcs: map[string]bool{}}
	var err error
	sel.pkgs, err = closure(r.s.cfg.Suites, r.s.cfg.Architectures, all,
		closureOptions{patterns: r.s.filters, deps: r.s.followDeps(), recommends: r.s.cfg.FilterRecommends,
			node: r.node, check: r.s.cfg.FilterCheck}, r.env.Log)
	if err != nil {
		return nil, err
	}
	if r.s.cfg.Retain != nil {
		r.keepRetained(sel, all)
		r.retainNewest(sel, r.s.cfg.Retain.Versions)
	}
	sel.addSources(all)
	r.env.Log.Info("filter selected packages", "packages", len(sel.pkgs))
	return sel, nil
}

// addSources keeps the source packages of the kept binaries.
func (s *subset) addSources(all []*binPkg) {
	for _, p := range all {
		if s.pkgs[p.key()] {
			s.srcs[p.suite+"\x00"+strings.ToLower(p.Source)] = true
		}
	}
}

// keepRetained adds the retained versions (those only the previous
// snapshot still had) of every package name the filter selects.
func (r *run) keepRetained(sel *subset, all []*binPkg) {
	names := map[string]bool{}
	for _, p := range all {
		if sel.pkgs[p.key()] {
			names[p.Name] = true
		}
	}
	for _, ix := range r.ixs {
		for _, p := range ix.pkgs[ix.nUpOr():] {
			if names[p.Name] {
				sel.pkgs[p.key()] = true
			}
		}
	}
}
