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
		fmt.Fprintf(&b, "%s\turl=%s\tdest=%s\tref=%s\n", r.Name, r.URL, r.Dest, r.Ref)
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

func TestParseRepos(t *testing.T) {
	tests := []struct {
		name, data string
		want       []GitRepo
	}{
		{"empty", "", nil},
		{"no repos", "github: x\n", nil},
		{"empty group", "repos:\n  g:\n", nil},
		{
			"overrides entry > group > top",
			`
ref: top
dest: top-%{name}
source: "https://h/%{name}"
repos:
  g:
    ref: group
    repos:
      a:
      b: {ref: entry, dest: mine}
      c: {source: "https://other/c"}
`,
			[]GitRepo{
				{Name: "a", URL: "https://h/a", Dest: "top-a", Ref: "group"},
				{Name: "b", URL: "https://h/b", Dest: "mine", Ref: "entry"},
				{Name: "c", URL: "https://other/c", Dest: "top-c", Ref: "group"},
			},
		},
		{
			"builtins",
			"repos:\n  grp:\n    source: \"https://h/%{group}/%{name}.git\"\n    repos:\n      x: {dest: \"%{group}/%{name}\"}\n",
			[]GitRepo{{Name: "x", URL: "https://h/grp/x.git", Dest: "grp/x"}},
		},
		{
			"nested vars resolve in the entry's scope",
			`
host: https://h
base: "%{host}/%{author}"
repos:
  g:
    author: alice
    source: "%{base}/%{name}"
    repos:
      one: {}
      two: {author: bob}
`,
			[]GitRepo{{Name: "one", URL: "https://h/alice/one"}, {Name: "two", URL: "https://h/bob/two"}},
		},
		{
			"non-string scalars keep their text",
			"source: /srv/x\nrepos:\n  g:\n    repos:\n      x: {ref: 2024.10}\n",
			[]GitRepo{{Name: "x", URL: "/srv/x", Ref: "2024.10"}},
		},
		{
			"percent without brace is literal",
			"repos:\n  g:\n    repos:\n      x: {source: \"/srv/100%/x\"}\n",
			[]GitRepo{{Name: "x", URL: "/srv/100%/x"}},
		},
		{
			"sorted across groups",
			"source: \"/srv/%{name}\"\nrepos:\n  z:\n    repos:\n      b: {}\n  a:\n    repos:\n      c: {}\n      a: {}\n",
			[]GitRepo{{Name: "a", URL: "/srv/a"}, {Name: "b", URL: "/srv/b"}, {Name: "c", URL: "/srv/c"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseRepos("repos.yaml", []byte(tt.data))
			if err != nil {
				t.Fatal(err)
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
			"github: h\nrepos:\n  openstack:\n    repos:\n      nova:\n        source: \"%{github}/%{brnch}\"\n",
			[]string{`repos.yaml:6: repo "nova" (group "openstack"): unknown variable %{brnch} in source`},
		},
		{
			"unknown variable in nested var",
			"base: \"%{nope}/x\"\nrepos:\n  g:\n    repos:\n      a: {source: \"%{base}\"}\n",
			[]string{`repos.yaml:1: repo "a" (group "g"): unknown variable %{nope} in base (used by source)`},
		},
		{
			"cycle",
			"a: \"%{b}\"\nb: \"x%{a}\"\nrepos:\n  g:\n    source: \"%{a}\"\n    repos:\n      r: {}\n",
			[]string{`repos.yaml:2: repo "r" (group "g"): variable cycle %{a} -> %{b} -> %{a} in source`},
		},
		{
			"self cycle",
			"repos:\n  g:\n    repos:\n      r: {source: \"%{source}\"}\n",
			[]string{`repos.yaml:4: repo "r" (group "g"): variable cycle %{source} -> %{source} in source`},
		},
		{
			"unterminated",
			"repos:\n  g:\n    repos:\n      r: {source: \"%{oops\"}\n",
			[]string{`repos.yaml:4: repo "r" (group "g"): unterminated %{ in source`},
		},
		{
			"missing source",
			"repos:\n  g:\n    ref: main\n    repos:\n      r: {}\n",
			[]string{`repos.yaml:5: repo "r" (group "g"): no source`},
		},
		{
			"duplicate name across groups",
			"source: /srv/x\nrepos:\n  a:\n    repos:\n      r: {}\n  b:\n    repos:\n      r: {}\n",
			[]string{`repos.yaml:8: repo "r" (group "b"): duplicate repo name, already defined in group "a" at line 5`},
		},
		{
			"duplicate key in group",
			"source: /srv/x\nrepos:\n  a:\n    repos:\n      r: {}\n      r: {}\n",
			[]string{`repos.yaml:6: duplicate key "r" in repos.a.repos (first at line 5)`},
		},
		{
			"invalid name",
			"source: /srv/x\nrepos:\n  a:\n    repos:\n      Bad_Name: {}\n",
			[]string{`repos.yaml:5: repo "Bad_Name" (group "a"): invalid repo name`},
		},
		{
			"builtin redefined",
			"repos:\n  a:\n    name: x\n",
			[]string{`repos.yaml:3: repos.a: "name" is a built-in variable`},
		},
		{
			"non-scalar variable",
			"github: [a]\n",
			[]string{`repos.yaml:1: top level: variable "github": expected a scalar, got a sequence`},
		},
		{
			"repos not a mapping",
			"repos: [a]\n",
			[]string{"repos.yaml:1: repos: expected a mapping of groups, got a sequence"},
		},
		{
			"entries not a mapping",
			"repos:\n  g:\n    repos: [a]\n",
			[]string{"repos.yaml:3: repos.g.repos: expected a mapping of repos"},
		},
		{
			"entry not a mapping",
			"repos:\n  g:\n    repos:\n      a: https://x\n",
			[]string{"repos.yaml:4: repos.g.repos.a: expected a mapping, got a string"},
		},
		{
			"bad source url",
			"repos:\n  g:\n    repos:\n      a:\n        source: ftp://x/y\n",
			[]string{`repos.yaml:5: repo "a" (group "g"): source: invalid git URL "ftp://x/y"`},
		},
		{
			"bad dest",
			"source: /srv/x\nrepos:\n  g:\n    dest: /abs/%{name}\n    repos:\n      a:\n",
			[]string{`repos.yaml:4: repo "a" (group "g"): dest: invalid path "/abs/a"`},
		},
		{
			"several errors, one per line",
			"repos:\n  g:\n    repos:\n      a: {}\n      b: {}\n",
			[]string{"repos.yaml:4: repo \"a\" (group \"g\"): no source", "\nrepos.yaml:5: repo \"b\" (group \"g\"): no source"},
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
