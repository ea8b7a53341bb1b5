package apt

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/config"
)

// A pattern that matches nothing fails the sync, naming the pattern.
func TestFilterUnmatchedPatternFails(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	m := newMirror(t)
	_, err := m.sync(newSource(t, aptConfig(up, func(c *config.AptSource) {
		c.Filter, c.FilterWithDeps = []string{"demo-app", "demo-aap", "nosuch-*"}, true
	})))
	if !errors.Is(err, ErrFilterUnmatched) || !strings.Contains(err.Error(), `"demo-aap", "nosuch-*"`) || strings.Contains(err.Error(), `"demo-app"`) {
		t.Fatalf("err = %v, want ErrFilterUnmatched naming demo-aap and nosuch-*", err)
	}
}

// The warning about dependencies outside the mirrored indices names the
// first 20 of them and counts the rest.
func TestFilterMissingDepsNamed(t *testing.T) {
	var deps []string
	for i := range 25 {
		deps = append(deps, fmt.Sprintf("absent-%02d", i))
	}
	up := apttest.New(t, apttest.Options{})
	up.Add(t, apttest.Package{Name: "needy", Version: "1", Depends: strings.Join(deps, ", ")})
	up.Publish(t)
	m := newMirror(t)
	m.mustSync(newSource(t, aptConfig(up, func(c *config.AptSource) {
		c.Filter, c.FilterWithDeps = []string{"needy"}, true
	})))
	var log string
	for _, line := range strings.Split(m.logBuf.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "not in the mirrored indices") {
			log = line
		}
	}
	if !strings.Contains(log, "count=25") || !strings.Contains(log, "absent-00 (of needy), ") || !strings.Contains(log, "absent-19 (of needy) (and 5 more)") || strings.Contains(log, "absent-20") {
		t.Errorf("log does not name the first 20 missing dependencies and count the rest:\n%s", log)
	}
}

// simulateEach runs apt-get install --simulate for every package alone
// in a clean apt root that sees only the served snapshot, and returns
// what apt would install for each, as "NAME VERSION".
func simulateEach(t *testing.T, c *apttest.Client, pkgs ...string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, p := range pkgs {
		res := c.Must("apt-get", "install", "--simulate", "--no-install-recommends", p)
		for _, m := range instVersionRE.FindAllStringSubmatch(res, -1) {
			out[p] = append(out[p], m[1]+" "+m[2])
		}
		slices.Sort(out[p])
	}
	return out
}

var instVersionRE = regexp.MustCompile(`(?m)^Inst (\S+) \((\S+) `)

// filter_check: the resolver proves the published subset installs, and
// so does stock apt, in a clean root, for every requested package.
func TestFilterCheck(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	m := newMirror(t)
	rec := m.mustSync(newSource(t, aptConfig(up, func(c *config.AptSource) {
		c.Filter, c.FilterWithDeps, c.FilterCheck = []string{"demo-*", "other-tool"}, true, true
	})))
	if !strings.Contains(m.logBuf.String(), "filter_check: every filtered package installs") {
		t.Error("no filter_check line in the log")
	}
	c := m.client(m.serve(rec), "stable")
	c.Update()
	var roots []string
	for _, d := range up.Debs() {
		if strings.HasPrefix(d.Name, "demo-") || d.Name == "other-tool" {
			roots = append(roots, d.Name)
		}
	}
	for p, got := range simulateEach(t, c, roots...) {
		if len(got) == 0 {
			t.Errorf("apt-get would install nothing for %s", p)
		}
	}

	// A dependency outside the mirrored indices passes a plain filter
	// (with a warning) but fails filter_check, naming it.
	up2 := apttest.New(t, apttest.Options{Debs: debCache})
	up2.Add(t, apttest.Package{Name: "needy", Version: "1", Depends: "elsewhere (>= 2)"})
	up2.Publish(t)
	m2 := newMirror(t)
	cfg := aptConfig(up2, func(c *config.AptSource) { c.Filter, c.FilterWithDeps = []string{"needy"}, true })
	m2.mustSync(newSource(t, cfg))
	cfg.FilterCheck = true
	_, err := m2.sync(newSource(t, cfg))
	if !errors.Is(err, ErrUninstallable) || !strings.Contains(err.Error(), "filter_check") || !strings.Contains(err.Error(), "elsewhere (>= 2) (of needy)") {
		t.Errorf("filter_check with a missing dependency: err = %v", err)
	}
}

// filter_from: a node's dpkg-query list mirrors exactly its versions
// (older than the upstream's newest) plus their closure, and stock apt
// with only the snapshot reinstalls exactly those versions.
func TestFilterFromNodeList(t *testing.T) {
	up := apttest.New(t, apttest.Options{Debs: debCache})
	up.Add(t,
		apttest.Package{Name: "app", Version: "1.0-1", Depends: "lib (>= 1.0), helper"},
		apttest.Package{Name: "app", Version: "2.0-1", Depends: "lib (>= 2.0), helper"},
		apttest.Package{Name: "lib", Version: "1.0-1"},
		apttest.Package{Name: "lib", Version: "2.0-1"},
		apttest.Package{Name: "helper", Version: "1.0-1", Depends: "virt"},
		apttest.Package{Name: "prov", Version: "1.0-1", Provides: "virt"},
		apttest.Package{Name: "unrelated", Version: "1.0-1"},
	)
	up.Publish(t)
	list := filepath.Join(t.TempDir(), "node.list")
	// what dpkg-query -W -f '${Package}=${Version}\n' prints on a node
	// that has app 1.0 (helper and prov came with it, listed too)
	os.WriteFile(list, []byte("app=1.0-1\nlib=1.0-1\nhelper=1.0-1\n"), 0o644)
	m := newMirror(t)
	rec := m.mustSync(newSource(t, aptConfig(up, func(c *config.AptSource) { c.FilterFrom, c.FilterCheck = list, true })))
	want := []string{"app 1.0-1", "helper 1.0-1", "lib 1.0-1", "prov 1.0-1"}
	if got := packagesIn(t, m.file(rec, "dists/stable/main/binary-amd64/Packages")); !slices.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
	c := m.client(m.serve(rec), "stable")
	c.Update()
	if got := simulateEach(t, c, "app")["app"]; !slices.Equal(got, want) {
		t.Errorf("apt-get would install %v, want %v", got, want)
	}

	// Versions the upstream lacks fail the sync, each named.
	os.WriteFile(list, []byte("app=1.0-1\nlib=9.9-1\nghost=1.0\n"), 0o644)
	_, err := newMirror(t).sync(newSource(t, aptConfig(up, func(c *config.AptSource) { c.FilterFrom = list })))
	if !errors.Is(err, ErrNotUpstream) || !strings.Contains(err.Error(), "lib=9.9-1, ghost=1.0") {
		t.Errorf("err = %v, want ErrNotUpstream naming lib=9.9-1 and ghost=1.0", err)
	}
	// A malformed line is an error naming the file and line.
	os.WriteFile(list, []byte("app=1.0-1\napp 1.0-1\n"), 0o644)
	_, err = newMirror(t).sync(newSource(t, aptConfig(up, func(c *config.AptSource) { c.FilterFrom = list })))
	if err == nil || !strings.Contains(err.Error(), list+":2:") {
		t.Errorf("err = %v, want one naming %s:2", err, list)
	}
}
