package config

import (
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata golden files")

// formatRepos renders repos one per line for golden comparison.
func formatRepos(repos []GitRepo) string {
	var b strings.Builder
	for _, r := range repos {
		fmt.Fprintf(&b, "%s\tgroup=%s\tline=%d\turl=%s\tdest=%s\tref=%s\n", r.Name, r.Group, r.Line, r.URL, r.Dest, r.Ref)
	}
	return b.String()
}

func TestReposGolden(t *testing.T) {
	repos, err := LoadRepos("testdata/repos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := formatRepos(repos)
	const golden = "testdata/repos.golden"
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("ParseRepos mismatch (run with -update to accept):\n got:\n%s\nwant:\n%s", got, want)
	}
}

func TestExampleRepos(t *testing.T) {
	repos, err := LoadRepos("../../examples/repos.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got := formatRepos(repos)
	for _, want := range []string{
		"keystone\tgroup=openstack\tline=16\turl=https://opendev.example/openstack/puppet-keystone\tdest=modules/keystone\tref=stable/2024.1\n",
		"consul\tgroup=community\tline=21\turl=https://git.example.org/solarkennedy/puppet-consul\tdest=modules/consul\tref=07d691ff26108d44f2142e6a181e2f154dc921e9\n",
		"apt\tgroup=puppetlabs\tline=38\turl=https://git.example.org/puppetlabs/puppetlabs-apt\tdest=modules/apt\tref=master\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("examples/repos.yaml: no line %q in\n%s", want, got)
		}
	}
}

func TestParseRepos(t *testing.T) {
	tests := []struct {
		name, data string
		want       []GitRepo
	}{
		{"empty", "", nil},
		{"comments only", "# nothing yet\n", nil},
		{"variables only", "github: x\n", nil},
		{"empty group", "g: {}\n", nil},
		{
			"overrides entry > group > top",
			`
ref: top
dest: top-%{name}
source: "https://h/%{name}"
g:
  ref: group
  a:
  b: {ref: entry, dest: mine}
  c: {source: "https://other/c"}
`,
			[]GitRepo{
				{Name: "a", URL: "https://h/a", Dest: "top-a", Ref: "group", Group: "g", Line: 7},
				{Name: "b", URL: "https://h/b", Dest: "mine", Ref: "entry", Group: "g", Line: 8},
				{Name: "c", URL: "https://other/c", Dest: "top-c", Ref: "group", Group: "g", Line: 9},
			},
		},
		{
			"builtins",
			"grp:\n  source: \"https://h/%{group}/%{name}.git\"\n  x: {dest: \"%{group}/%{name}\"}\n",
			[]GitRepo{{Name: "x", URL: "https://h/grp/x.git", Dest: "grp/x", Group: "grp", Line: 3}},
		},
		{
			"nested vars resolve in the entry's scope",
			`
host: https://h
base: "%{host}/%{author}"
g:
  author: alice
  source: "%{base}/%{name}"
  one: {}
  two: {author: bob}
`,
			[]GitRepo{{Name: "one", URL: "https://h/alice/one", Group: "g", Line: 7}, {Name: "two", URL: "https://h/bob/two", Group: "g", Line: 8}},
		},
		{
			"non-string scalars keep their text",
			"source: /srv/x\ng:\n  x: {ref: 2024.10}\n",
			[]GitRepo{{Name: "x", URL: "/srv/x", Ref: "2024.10", Group: "g", Line: 3}},
		},
		{
			"an empty variable is empty",
			"source: /srv/x\nref: main\ng:\n  x: {ref: }\n",
			[]GitRepo{{Name: "x", URL: "/srv/x", Group: "g", Line: 4}},
		},
		{
			"percent without brace is literal",
			"g:\n  x: {source: \"/srv/100%/x\"}\n",
			[]GitRepo{{Name: "x", URL: "/srv/100%/x", Group: "g", Line: 2}},
		},
		{
			"anchors and merge keys",
			`
base: &base
  source: "https://h/%{author}/%{name}"
  ref: v1
g:
  author: a
  x: *base
  y:
    <<: *base
    ref: v2
  z: {<<: [{dest: d}, *base], author: b}
`,
			[]GitRepo{
				{Name: "x", URL: "https://h/a/x", Ref: "v1", Group: "g", Line: 7},
				{Name: "y", URL: "https://h/a/y", Ref: "v2", Group: "g", Line: 8},
				{Name: "z", URL: "https://h/b/z", Dest: "d", Ref: "v1", Group: "g", Line: 11},
			},
		},
		{
			"merged group variables",
			"vars: &v {source: \"/srv/%{name}\", ref: r}\ng:\n  <<: *v\n  x:\n",
			[]GitRepo{{Name: "x", URL: "/srv/x", Ref: "r", Group: "g", Line: 4}},
		},
		{
			"sorted across groups",
			"source: \"/srv/%{name}\"\nz:\n  b: {}\na:\n  c: {}\n  a: {}\n",
			[]GitRepo{{Name: "a", URL: "/srv/a", Group: "a", Line: 6}, {Name: "b", URL: "/srv/b", Group: "z", Line: 3}, {Name: "c", URL: "/srv/c", Group: "a", Line: 5}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRepos("repos.yaml", []byte(tt.data))
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.want {
				tt.want[i].File = "repos.yaml"
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseReposErrors(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string
	}{
		{
			"unknown variable",
			"github: h\nopenstack:\n  nova:\n    source: \"%{github}/%{brnch}\"\n",
			[]string{`repos.yaml:4: repo "nova" (group "openstack"): unknown variable %{brnch} in source`},
		},
		{
			"unknown variable in nested var",
			"base: \"%{nope}/x\"\ng:\n  a: {source: \"%{base}\"}\n",
			[]string{`repos.yaml:1: repo "a" (group "g"): unknown variable %{nope} in base (used by source)`},
		},
		{
			"cycle",
			"a: \"%{b}\"\nb: \"x%{a}\"\ng:\n  source: \"%{a}\"\n  r: {}\n",
			[]string{`repos.yaml:2: repo "r" (group "g"): variable cycle %{a} -> %{b} -> %{a} in source`},
		},
		{
			"self cycle",
			"g:\n  r: {source: \"%{source}\"}\n",
			[]string{`repos.yaml:2: repo "r" (group "g"): variable cycle %{source} -> %{source} in source`},
		},
		{
			"unterminated",
			"g:\n  r: {source: \"%{oops\"}\n",
			[]string{`repos.yaml:2: repo "r" (group "g"): unterminated %{ in source`},
		},
		{
			"missing source",
			"g:\n  ref: main\n  r: {}\n",
			[]string{`repos.yaml:3: repo "r" (group "g"): no source`},
		},
		{
			"duplicate name across groups",
			"source: /srv/x\na:\n  r: {}\nb:\n  r:\n",
			[]string{`repos.yaml:5: repo "r" (group "b"): duplicate repo name, already defined in group "a" at line 3`},
		},
		{
			"duplicate key in group",
			"source: /srv/x\na:\n  r: {}\n  r: {}\n",
			[]string{`repos.yaml:4: duplicate key "r" in a (first at line 3)`},
		},
		{
			"invalid name",
			"source: /srv/x\na:\n  Bad_Name: {}\n",
			[]string{`repos.yaml:3: repo "Bad_Name" (group "a"): invalid repo name`},
		},
		{
			"builtin redefined",
			"a:\n  name: x\n",
			[]string{`repos.yaml:2: a: "name" is a built-in variable`},
		},
		{
			"sequence at top level",
			"github: [a]\n",
			[]string{`repos.yaml:1: top level: "github" is a sequence: a top-level value is a variable (a scalar) or a group (a mapping)`},
		},
		{
			"sequence in a group",
			"g:\n  a: [x]\n",
			[]string{`repos.yaml:2: group "g": "a" is a sequence`},
		},
		{
			"mapping inside an entry",
			"g:\n  a:\n    source: {url: x}\n",
			[]string{`repos.yaml:3: entry "a" (group "g"): variable "source": expected a scalar, got a mapping`},
		},
		{
			"the old nested format",
			"repos:\n  g:\n    repos:\n      a: {}\n",
			[]string{`repos.yaml:3: entry "g" (group "repos"): variable "repos": expected a scalar, got a mapping (the nested "repos:" format is gone`},
		},
		{
			"top level not a mapping",
			"- a\n",
			[]string{"repos.yaml:1: the top level must be a mapping of variables and groups, got a sequence"},
		},
		{
			"bad merge",
			"g:\n  <<: x\n",
			[]string{"repos.yaml:2: g: << expects a mapping or a sequence of mappings"},
		},
		{
			"bad source url",
			"g:\n  a:\n    source: ftp://x/y\n",
			[]string{`repos.yaml:3: repo "a" (group "g"): source: invalid git URL "ftp://x/y"`},
		},
		{
			"bad dest",
			"source: /srv/x\ng:\n  dest: /abs/%{name}\n  a:\n",
			[]string{`repos.yaml:3: repo "a" (group "g"): dest: invalid path "/abs/a"`},
		},
		{
			"several errors, one per line",
			"g:\n  a: {}\n  b: {}\n",
			[]string{"repos.yaml:2: repo \"a\" (group \"g\"): no source", "\nrepos.yaml:3: repo \"b\" (group \"g\"): no source"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseRepos("repos.yaml", []byte(tt.data))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
