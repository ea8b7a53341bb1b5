package yum

import (
	"errors"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/yum/yumtest"
)

// filter_check fails a subset whose requirements lie outside it, naming
// them; without filter_check the same subset syncs with a warning.
func TestFilterCheckNamesWhatIsMissing(t *testing.T) {
	f := yumtest.NewFixture(t, []yumtest.Package{{Name: "needy", Requires: []string{"elsewhere >= 2"}}, {Name: "fine"}})
	srv := yumtest.Serve(t, f.Repo(t, yumtest.RepoOptions{}))
	h := newHarness(t)
	h.mustSync(newSource(t, srv, f, func(o *Options) { o.Verbatim, o.Filter, o.FilterWithDeps = false, []string{"needy"}, true }))
	_, err := h.sync(newSource(t, srv, f, func(o *Options) {
		o.Verbatim, o.Filter, o.FilterWithDeps, o.FilterCheck = false, []string{"needy"}, true, true
	}))
	if !errors.Is(err, ErrUninstallable) || !strings.Contains(err.Error(), "elsewhere >= 2") {
		t.Errorf("err = %v, want ErrUninstallable naming elsewhere >= 2", err)
	}
}

func TestSplitNVRA(t *testing.T) {
	for in, want := range map[string]string{
		"openssh-server-8.7p1-38.el9.x86_64": "openssh-server 8.7p1 38.el9 x86_64",
		"bar-0.9-1.noarch":                   "bar 0.9 1 noarch",
	} {
		n, v, r, a, ok := splitNVRA(in)
		if got := strings.Join([]string{n, v, r, a}, " "); !ok || got != want {
			t.Errorf("splitNVRA(%q) = %q %v, want %q", in, got, ok, want)
		}
	}
	for _, bad := range []string{"noarch", "name.x86_64", "a-b.x86_64", "a b-1-1.x86_64"} {
		if _, _, _, _, ok := splitNVRA(bad); ok {
			t.Errorf("splitNVRA(%q) accepted", bad)
		}
	}
}

// advisories: the subset is the packages of the matching advisories
// plus their closure, and updateinfo keeps only those advisories.
func TestAdvisoriesSubset(t *testing.T) {
	f := yumtest.NewFixture(t, nil)
	srv := yumtest.Serve(t, f.Repo(t, yumtest.RepoOptions{UpdateInfo: updateInfoXML}))
	tests := []struct {
		name     string
		adv      Advisories
		filter   []string
		pkgs     string
		keep, no []string // advisory ids in the published updateinfo
	}{
		{"security important", Advisories{Types: []string{"security"}, Severities: []string{"important"}}, nil,
			"bar-1.2-1.noarch.rpm lonely-0.1-1.noarch.rpm", []string{"FIX-2026:0001"}, []string{"FIX-2026:0002"}},
		{"bugfix", Advisories{Types: []string{"bugfix"}}, nil,
			"lonely-0.1-1.noarch.rpm", []string{"FIX-2026:0002"}, []string{"FIX-2026:0001"}},
		{"security, narrowed by filter", Advisories{Types: []string{"security"}}, []string{"bar"},
			"bar-1.2-1.noarch.rpm", []string{"FIX-2026:0001"}, []string{"FIX-2026:0002", "lonely"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			rec := h.mustSync(newSource(t, srv, f, func(o *Options) { o.Verbatim, o.Filter, o.Advisories = false, tt.filter, &tt.adv }))
			var got []string
			for _, e := range h.tree(rec, "fixture").Entries {
				if n, ok := strings.CutPrefix(e.Path, "Packages/"); ok {
					got = append(got, n)
				}
			}
			if strings.Join(got, " ") != tt.pkgs {
				t.Errorf("packages %v, want %s", got, tt.pkgs)
			}
			md, err := parseRepomd(h.file(rec, "fixture", "repodata/repomd.xml"))
			if err != nil {
				t.Fatal(err)
			}
			ui := string(h.openData(rec, md, "updateinfo"))
			for _, id := range tt.keep {
				if !strings.Contains(ui, id) {
					t.Errorf("updateinfo lacks %s:\n%s", id, ui)
				}
			}
			for _, id := range tt.no {
				if strings.Contains(ui, id) {
					t.Errorf("updateinfo keeps %s:\n%s", id, ui)
				}
			}
		})
	}
	h := newHarness(t)
	_, err := h.sync(newSource(t, srv, f, func(o *Options) {
		o.Verbatim, o.Advisories = false, &Advisories{Types: []string{"security"}, Severities: []string{"Critical"}}
	}))
	if !errors.Is(err, ErrNoAdvisories) {
		t.Errorf("no matching advisory: err = %v", err)
	}
}
