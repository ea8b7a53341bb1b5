package apt

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/apt/resolve"
)

// resolverFixture generates a package set that exercises what apt's
// solver decides: alternatives whose first choice is absent, virtual
// packages with several providers (versioned and not, with different
// priorities), version constraints some of which nothing meets,
// Pre-Depends, Multi-Arch same/foreign/allowed packages built for two
// architectures, ":any", arch-all packages, Conflicts and Breaks between
// packages apt could choose together, and several versions of one
// package.
func resolverFixture(rng *rand.Rand) []apttest.Package {
	var pkgs []apttest.Package
	versions := []string{"1.0-1", "1.5-1", "2.0-1"}
	pick := func(list []string) string { return list[rng.IntN(len(list))] }
	prios := []string{"optional", "optional", "standard", "extra", "important", "required"}
	const nLib, nTool, nInterp, nData, nVirt, nProv, nApp = 12, 6, 3, 5, 6, 14, 60
	lib := func() string { return fmt.Sprintf("lib%d", rng.IntN(nLib)) }
	constraint := func() string {
		switch rng.IntN(6) {
		case 0:
			return " (>= " + pick(versions) + ")"
		case 1:
			return " (<< 2.0)"
		case 2:
			return " (>= 3.0)" // nothing has it
		}
		return ""
	}
	for i := range nLib {
		ma := ""
		if i%2 == 0 {
			ma = "same"
		}
		n := 1 + rng.IntN(3)
		for _, v := range versions[:n] {
			dep := ""
			if i > 0 && rng.IntN(3) == 0 {
				dep = fmt.Sprintf("lib%d", rng.IntN(i))
			}
			for _, arch := range []string{"amd64", "i386"} {
				pkgs = append(pkgs, apttest.Package{Name: fmt.Sprintf("lib%d", i), Version: v, Arch: arch, MultiArch: ma, Depends: dep})
			}
		}
	}
	for i := range nTool {
		pkgs = append(pkgs, apttest.Package{Name: fmt.Sprintf("tool%d", i), Version: "1.0-1", MultiArch: "foreign", Depends: lib()})
	}
	for i := range nInterp {
		for _, arch := range []string{"amd64", "i386"} {
			pkgs = append(pkgs, apttest.Package{Name: fmt.Sprintf("interp%d", i), Version: "3.1-1", Arch: arch, MultiArch: "allowed"})
		}
	}
	for i := range nData {
		pkgs = append(pkgs, apttest.Package{Name: fmt.Sprintf("data%d", i), Version: "1.0-1", Arch: "all"})
	}
	for i := range nProv {
		virt := fmt.Sprintf("virt%d", i%nVirt)
		prov := virt
		switch rng.IntN(3) {
		case 0:
			prov += " (= 1.0)"
		case 1:
			prov += " (= 2.0)"
		}
		p := apttest.Package{Name: fmt.Sprintf("prov%d", i), Version: "1.0-1", Provides: prov, Priority: pick(prios)}
		switch rng.IntN(4) {
		case 0:
			p.Conflicts = virt // the mail-transport-agent pattern: only one provider at a time
		case 1:
			p.Breaks = fmt.Sprintf("prov%d", rng.IntN(nProv))
		}
		if rng.IntN(3) == 0 {
			p.Depends = lib() + constraint()
		}
		pkgs = append(pkgs, p)
	}
	group := func() string {
		switch rng.IntN(9) {
		case 0:
			return lib() + constraint()
		case 1:
			return fmt.Sprintf("ghost%d | %s", rng.IntN(3), lib())
		case 2:
			return lib() + constraint() + " | " + lib()
		case 3:
			return fmt.Sprintf("virt%d", rng.IntN(nVirt))
		case 4:
			return fmt.Sprintf("virt%d (>= 1.5) | prov%d", rng.IntN(nVirt), rng.IntN(nProv))
		case 5:
			return fmt.Sprintf("tool%d", rng.IntN(nTool))
		case 6:
			return fmt.Sprintf("interp%d:any", rng.IntN(nInterp))
		case 7:
			return fmt.Sprintf("data%d", rng.IntN(nData))
		}
		return fmt.Sprintf("app%d", rng.IntN(nApp))
	}
	groups := func(n int) string {
		var gs []string
		for range n {
			gs = append(gs, group())
		}
		return strings.Join(gs, ", ")
	}
	for i := range nApp {
		p := apttest.Package{Name: fmt.Sprintf("app%d", i), Version: "1.0-1", Depends: groups(1 + rng.IntN(4))}
		if rng.IntN(5) == 0 {
			p.PreDepends = lib()
		}
		if rng.IntN(2) == 0 {
			p.Recommends = groups(1 + rng.IntN(2))
		}
		switch rng.IntN(6) {
		case 0:
			p.Breaks = lib() + " (<< 1.5)"
		case 1:
			p.Conflicts = fmt.Sprintf("prov%d", rng.IntN(nProv))
		}
		pkgs = append(pkgs, p)
		if i%4 == 0 {
			p.Arch = "i386"
			pkgs = append(pkgs, p)
		}
		if i%7 == 0 { // an older version the candidate hides
			p.Arch, p.Version = "amd64", "0.9-1"
			pkgs = append(pkgs, p)
		}
	}
	return pkgs
}

// resolverRequests lists the requests to compare: every package alone
// (native, and i386 where built), every app with Recommends, and pairs.
func resolverRequests(rng *rand.Rand, pkgs []apttest.Package) []resolverRequest {
	var out []resolverRequest
	seen := map[string]bool{}
	for _, p := range pkgs {
		name := p.Name
		if p.Arch == "i386" {
			name += ":i386"
		}
		if !seen[name] {
			seen[name] = true
			out = append(out, resolverRequest{pkgs: []string{name}})
		}
	}
	for i := range 60 {
		out = append(out, resolverRequest{pkgs: []string{fmt.Sprintf("app%d", i)}, recommends: true})
	}
	for range 40 {
		out = append(out, resolverRequest{pkgs: []string{fmt.Sprintf("app%d", rng.IntN(60)), fmt.Sprintf("prov%d", rng.IntN(14))}})
	}
	return out
}

type resolverRequest struct {
	pkgs       []string
	recommends bool
}

func (r resolverRequest) String() string {
	return fmt.Sprintf("%v recommends=%v", r.pkgs, r.recommends)
}

var instRE = regexp.MustCompile(`(?m)^Inst (\S+) `)

// aptSimulate runs apt-get install --simulate and returns what it would
// install, or ok=false when apt refuses.
func aptSimulate(c *apttest.Client, r resolverRequest) (names []string, ok bool, out string) {
	rec := "false"
	if r.recommends {
		rec = "true"
	}
	out, err := c.Run("apt-get", append([]string{"install", "--simulate", "-o", "APT::Install-Recommends=" + rec, "-o", "APT::Install-Suggests=false"}, r.pkgs...)...)
	if err != nil {
		return nil, false, out
	}
	for _, m := range instRE.FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	slices.Sort(names)
	return names, true, out
}

// The resolver agrees with apt-get install --simulate, run in a clean
// apt root (every Dir:: private to the test) against a repository built
// with dpkg-deb and apt-ftparchive, on every generated request.
func TestResolverAgreesWithApt(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 2026))
	fixture := resolverFixture(rng)
	up := apttest.New(t, apttest.Options{Architectures: []string{"amd64", "i386"}, Compressions: []string{"", ".xz"}, Debs: debCache})
	up.Add(t, fixture...)
	up.Publish(t)
	c := apttest.NewMultiArchClient(t, "amd64", []string{"i386"}, "fixture.list", "deb [signed-by="+up.Key.Keyring+"] "+up.URL+" stable main\n")
	c.Update()

	var pkgs []*binPkg
	bp := &binParser{keepRelations: true, strs: map[string]string{}}
	for _, arch := range []string{"amd64", "i386"} {
		data, err := os.ReadFile(filepath.Join(up.Dir, "dists", "stable", "main", "binary-"+arch, "Packages"))
		if err != nil {
			t.Fatal(err)
		}
		p := newParagraphs(bytes.NewReader(data))
		for ord := 0; ; ord++ {
			ok, err := p.next()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			pkg, err := bp.parse(p, ord)
			if err != nil {
				t.Fatal(err)
			}
			pkgs = append(pkgs, &pkg)
		}
	}
	u := newResolveUniverse(pkgs, []string{"amd64", "i386"}, nil)
	if len(u.Warnings) > 0 {
		t.Fatalf("warnings: %v", u.Warnings)
	}
	reqs := resolverRequests(rng, fixture)
	if len(reqs) < 200 {
		t.Fatalf("only %d requests", len(reqs))
	}
	type answer struct {
		names []string
		ok    bool
		out   string
	}
	answers := make([]answer, len(reqs))
	aptSimulate(c, reqs[0]) // builds apt's cache once
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for i, r := range reqs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			n, ok, out := aptSimulate(c, r)
			answers[i] = answer{n, ok, out}
		}()
	}
	wg.Wait()
	agree, failures := 0, 0
	for i, r := range reqs {
		got, err := resolveNames(u, pkgs, r)
		a := answers[i]
		switch {
		case !a.ok && err != nil:
			agree++
			failures++
		case a.ok && err == nil && slices.Equal(got, a.names):
			agree++
		default:
			t.Errorf("%s:\n  apt: ok=%v %v\n  resolver: %v err=%v\n%s", r, a.ok, a.names, got, err, a.out)
		}
	}
	t.Logf("%d of %d requests agree with apt-get (%d that apt refuses)", agree, len(reqs), failures)
}

// resolveNames runs the resolver for r and renders the choice as apt
// names its packages ("name" native or arch all, "name:arch" otherwise).
func resolveNames(u *resolve.Universe, pkgs []*binPkg, r resolverRequest) ([]string, error) {
	var reqs []resolve.Request
	for _, p := range r.pkgs {
		name, arch, _ := strings.Cut(p, ":")
		reqs = append(reqs, resolve.Request{Name: name, Arch: arch})
	}
	sel, err := u.Install(reqs, resolve.Options{Recommends: r.recommends})
	if err != nil {
		return nil, err
	}
	if len(sel.Missing) > 0 {
		return nil, fmt.Errorf("missing %v", sel.Missing)
	}
	var names []string
	for _, i := range sel.Chosen {
		p := pkgs[i]
		name := p.Name
		if p.Arch != "amd64" && p.Arch != "all" {
			name += ":" + p.Arch
		}
		names = append(names, name)
	}
	slices.Sort(names)
	return names, nil
}
