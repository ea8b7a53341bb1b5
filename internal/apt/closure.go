package apt

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/mirrord/mirrord/internal/debver"
)

// universe indexes every package of the mirrored indices for the
// dependency closure of a filter.
type universe struct {
	suites    []string // in config order: a package's own suite is tried first, then these
	byName    map[string][]*binPkg
	providers map[string][]provider
	fallback  string // architecture assumed for arch-all packages of binary-all indices
	log       *slog.Logger
}

type provider struct {
	pkg *binPkg
	rel debver.Relation
}

func newUniverse(suites []string, pkgs []*binPkg, fallbackArch string, log *slog.Logger) *universe {
	u := &universe{suites: suites, byName: map[string][]*binPkg{}, providers: map[string][]provider{}, fallback: fallbackArch, log: log}
	for _, p := range pkgs {
		u.byName[p.Name] = append(u.byName[p.Name], p)
		if p.Provides == "" {
			continue
		}
		provs, err := debver.ParseProvides(p.Provides)
		if err != nil {
			log.Warn("ignoring unparsable Provides", "package", p.Name, "version", p.Version, "err", err)
			continue
		}
		for _, r := range provs {
			u.providers[r.Name] = append(u.providers[r.Name], provider{p, r})
		}
	}
	return u
}

// closureOptions say which packages a filter selects.
type closureOptions struct {
	patterns   []string
	deps       bool // follow Pre-Depends and Depends
	recommends bool // and Recommends
}

// closure returns the keys (binPkg.key) of the selected packages: in every
// suite, the newest version of each package whose name matches a pattern
// (per architecture), and, with deps, what their relations need,
// transitively. An OR group already satisfied by a selected package adds
// nothing; otherwise its first alternative that resolves is taken.
func (u *universe) closure(opt closureOptions) (map[string]bool, error) {
	c := &closer{u: u, opt: opt, sel: map[string]bool{}}
	var unmatched []string
	for _, pat := range opt.patterns {
		if n := c.roots(pat); n == 0 {
			unmatched = append(unmatched, pat)
		}
	}
	if len(unmatched) > 0 {
		return nil, fmt.Errorf("%w: filter pattern %s matches no package in suites %s; check the name (patterns are shell globs on package names)", ErrFilterUnmatched, quoteList(unmatched), strings.Join(u.suites, ", "))
	}
	for len(c.queue) > 0 {
		p := c.queue[0]
		c.queue = c.queue[1:]
		if opt.deps {
			c.follow(p)
		}
	}
	if len(c.unresolved) > 0 {
		u.log.Warn("dependencies of filtered packages are not in the mirrored indices (another repository must provide them)",
			"count", len(c.unresolved), "missing", firstN(c.unresolved, 20))
	}
	return c.sel, nil
}

// ErrFilterUnmatched marks a filter pattern that selects nothing.
var ErrFilterUnmatched = errors.New("filter matches nothing")

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// firstN renders the first n entries of list and, past them, how many
// more there are: "a, b, c (and 12 more)".
func firstN(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return fmt.Sprintf("%s (and %d more)", strings.Join(list[:n], ", "), len(list)-n)
}

type closer struct {
	u          *universe
	opt        closureOptions
	sel        map[string]bool
	queue      []*binPkg
	unresolved []string // "relation (needed by package)", in the order met
	missing    map[string]bool
}

func (c *closer) add(p *binPkg) {
	if k := p.key(); !c.sel[k] {
		c.sel[k] = true
		c.queue = append(c.queue, p)
	}
}

// roots selects the newest version per suite and architecture of every
// package whose name matches pat.
func (c *closer) roots(pat string) int {
	newest := map[string]*binPkg{}
	for name, pkgs := range c.u.byName {
		if ok, _ := path.Match(pat, name); !ok {
			continue
		}
		for _, p := range pkgs {
			k := p.suite + "\x00" + p.Name + "\x00" + p.Arch
			if cur := newest[k]; cur == nil || newer(p, cur) {
				newest[k] = p
			}
		}
	}
	for _, p := range newest {
		c.add(p)
	}
	return len(newest)
}

func newer(a, b *binPkg) bool {
	if a.verOK && b.verOK {
		return a.ver.Compare(b.ver) > 0
	}
	return a.verOK && !b.verOK
}

// follow selects what p's relations need.
func (c *closer) follow(p *binPkg) {
	fields := []string{p.PreDepends, p.Depends}
	if c.opt.recommends {
		fields = append(fields, p.Recommends)
	}
	for _, f := range fields {
		groups, err := debver.ParseRelations(f)
		if err != nil {
			c.u.log.Warn("ignoring unparsable relation field", "package", p.Name, "version", p.Version, "err", err)
			continue
		}
		for _, g := range groups {
			c.satisfy(p, g)
		}
	}
}

func (c *closer) satisfy(p *binPkg, g debver.Alternatives) {
	from := p.Arch
	if from == "all" {
		from = p.idxArch
		if from == "all" {
			from = c.u.fallback
		}
	}
	var picks []*binPkg
	applies := false
	for _, alt := range g {
		if !alt.AppliesTo(from) {
			continue // this alternative does not exist on this architecture
		}
		applies = true
		cands := c.candidates(alt, from)
		if slices.ContainsFunc(cands, func(q *binPkg) bool { return c.sel[q.key()] }) {
			return
		}
		if picks == nil && len(cands) > 0 {
			picks = cands
		}
	}
	if !applies {
		return
	}
	if picks == nil {
		if k := g.String(); !c.missing[k] {
			if c.missing == nil {
				c.missing = map[string]bool{}
			}
			c.missing[k] = true
			c.unresolved = append(c.unresolved, k+" (of "+p.Name+")")
		}
		c.u.log.Debug("unresolved dependency", "package", p.Name, "version", p.Version, "relation", g.String())
		return
	}
	c.add(c.best(picks, p.suite))
}

// candidates lists the packages that satisfy alt for a package of
// architecture from: real packages first, then providers.
func (c *closer) candidates(alt debver.Relation, from string) []*binPkg {
	var out []*binPkg
	for _, q := range c.u.byName[alt.Name] {
		if q.verOK && debver.ArchMatches(alt, from, q.Arch, q.MA) && alt.SatisfiedBy(q.ver) {
			out = append(out, q)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, pr := range c.u.providers[alt.Name] {
		if !debver.ArchMatches(alt, from, pr.pkg.Arch, pr.pkg.MA) {
			continue
		}
		if alt.Op == debver.OpNone || (pr.rel.Op == debver.OpEq && alt.SatisfiedBy(pr.rel.Version)) {
			out = append(out, pr.pkg)
		}
	}
	return out
}

// best picks among candidates (all real packages of one name, or all
// providers): the dependent's own suite first, then the suites in config
// order; within a suite the lowest name, then the newest version wins.
func (c *closer) best(cands []*binPkg, suite string) *binPkg {
	order := append([]string{suite}, c.u.suites...)
	for _, s := range order {
		var pick *binPkg
		for _, q := range cands {
			if q.suite != s {
				continue
			}
			if pick == nil || q.Name < pick.Name || (q.Name == pick.Name && newer(q, pick)) {
				pick = q
			}
		}
		if pick != nil {
			return pick
		}
	}
	return cands[0]
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
	u := newUniverse(r.s.cfg.Suites, all, r.s.cfg.Architectures[0], r.env.Log)
	sel := &subset{srcs: map[string]bool{}}
	var err error
	sel.pkgs, err = u.closure(closureOptions{patterns: r.s.filters, deps: r.s.cfg.FilterWithDeps, recommends: r.s.cfg.FilterRecommends})
	if err != nil {
		return nil, err
	}
	for _, p := range all {
		if sel.pkgs[p.key()] {
			sel.srcs[p.suite+"\x00"+strings.ToLower(p.Source)] = true
		}
	}
	r.env.Log.Info("filter selected packages", "packages", len(sel.pkgs))
	return sel, nil
}
