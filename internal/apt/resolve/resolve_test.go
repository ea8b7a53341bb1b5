package resolve

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/debver"
)

func names(u *Universe, pkgs []*Package, sel *Selection) []string {
	var out []string
	for _, i := range sel.Chosen {
		out = append(out, pkgs[i].Name+"="+pkgs[i].Version+":"+pkgs[i].Arch)
	}
	slices.Sort(out)
	return out
}

func TestInstallChoices(t *testing.T) {
	tests := []struct {
		name string
		pkgs []*Package
		req  []Request
		want []string
		err  string
	}{
		{"first alternative that exists, newest version", []*Package{
			{Name: "app", Version: "1", Arch: "amd64", Depends: "ghost | lib (>= 1.5) | other"},
			{Name: "lib", Version: "1.0", Arch: "amd64"}, {Name: "lib", Version: "2.0", Arch: "amd64"}, {Name: "other", Version: "1", Arch: "amd64"},
		}, []Request{{Name: "app"}}, []string{"app=1:amd64", "lib=2.0:amd64"}, ""},
		{"versioned provides satisfies a versioned dependency, unversioned does not", []*Package{
			{Name: "app", Version: "1", Arch: "amd64", Depends: "virt (>= 2)"},
			{Name: "plain", Version: "1", Arch: "amd64", Provides: "virt", Priority: "required"},
			{Name: "versioned", Version: "1", Arch: "amd64", Provides: "virt (= 2.1)"},
		}, []Request{{Name: "app"}}, []string{"app=1:amd64", "versioned=1:amd64"}, ""},
		{"an already chosen provider satisfies a later dependency", []*Package{
			{Name: "app", Version: "1", Arch: "amd64", Depends: "b-mta, mail-transport-agent"},
			{Name: "a-mta", Version: "1", Arch: "amd64", Provides: "mail-transport-agent", Priority: "required"},
			{Name: "b-mta", Version: "1", Arch: "amd64", Provides: "mail-transport-agent"},
		}, []Request{{Name: "app"}}, []string{"app=1:amd64", "b-mta=1:amd64"}, ""},
		{"a provider that conflicts with a chosen package is passed over", []*Package{
			{Name: "app", Version: "1", Arch: "amd64", Depends: "lib, virt"},
			{Name: "lib", Version: "1", Arch: "amd64"},
			{Name: "bad", Version: "1", Arch: "amd64", Provides: "virt", Conflicts: "lib", Priority: "required"},
			{Name: "good", Version: "1", Arch: "amd64", Provides: "virt"},
		}, []Request{{Name: "app"}}, []string{"app=1:amd64", "good=1:amd64", "lib=1:amd64"}, ""},
		{":any takes a Multi-Arch: allowed package; foreign satisfies other architectures", []*Package{
			{Name: "app", Version: "1", Arch: "i386", Depends: "py:any, tool"},
			{Name: "py", Version: "3", Arch: "amd64", MultiArch: debver.MAAllowed},
			{Name: "tool", Version: "1", Arch: "amd64", MultiArch: debver.MAForeign},
		}, []Request{{Name: "app", Arch: "i386"}}, []string{"app=1:i386", "py=3:amd64", "tool=1:amd64"}, ""},
		{"Pre-Depends are followed, Recommends only when asked", []*Package{
			{Name: "app", Version: "1", Arch: "amd64", PreDepends: "base", Recommends: "extra"},
			{Name: "base", Version: "1", Arch: "all"}, {Name: "extra", Version: "1", Arch: "amd64"},
		}, []Request{{Name: "app"}}, []string{"app=1:amd64", "base=1:all"}, ""},
		{"unsatisfiable: the error names the chain", []*Package{
			{Name: "app", Version: "1", Arch: "amd64", Depends: "mid"},
			{Name: "mid", Version: "1", Arch: "amd64", Depends: "lib (>= 3)"},
			{Name: "lib", Version: "2", Arch: "amd64"},
		}, []Request{{Name: "app"}}, nil, "app:amd64 1 -> Depends mid -> mid:amd64 1 depends on lib (>= 3)"},
		{"requests that conflict with each other", []*Package{
			{Name: "a", Version: "1", Arch: "amd64", Conflicts: "b"}, {Name: "b", Version: "1", Arch: "amd64"},
		}, []Request{{Name: "a"}, {Name: "b"}}, nil, "conflicts with or breaks b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := New(tt.pkgs, []string{tt.pkgs[0].Arch, "amd64"}, nil)
			if tt.pkgs[0].Arch == "amd64" {
				u = New(tt.pkgs, []string{"amd64", "i386"}, nil)
			}
			sel, err := u.Install(tt.req, Options{})
			if tt.err != "" {
				if !errors.Is(err, ErrUnsatisfiable) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := names(u, tt.pkgs, sel); !slices.Equal(got, tt.want) {
				t.Errorf("chose %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPinnedCandidate(t *testing.T) {
	pkgs := []*Package{
		{Name: "app", Version: "1", Arch: "amd64", Depends: "lib"},
		{Name: "lib", Version: "1.0", Arch: "amd64"}, {Name: "lib", Version: "2.0", Arch: "amd64"},
	}
	u := New(pkgs, []string{"amd64"}, map[string]string{"lib": "1.0"})
	sel, err := u.Install([]Request{{Name: "app"}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := names(u, pkgs, sel); !slices.Equal(got, []string{"app=1:amd64", "lib=1.0:amd64"}) {
		t.Errorf("chose %v", got)
	}
}
