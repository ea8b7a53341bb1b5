package reposyaml_test

import (
	"maps"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/reposyaml"
)

// stacktira is a file shaped exactly like stacktira's own repos.yaml, with
// anchors and merge keys on top.
const stacktira = `# modules for the site
destdir: 'modules/'            # top level: a scalar value is a variable
git_protocol: https
ref: master
defaults: &os                  # variables only, merged below
  source: "%{git_protocol}://git.example.org/%{author}/puppet-%{name}"
  dest: "%{destdir}%{name}"
openstack:                     # top level: a mapping value is a group
  author: openstack            # in a group: a scalar value is a group variable
  nova:                        # in a group: a mapping (or empty) value is an entry
    source: "%{git_protocol}://git.example.org/%{author}/puppet-nova"
    dest: "%{destdir}nova"
    ref: stable/2024.1
  keystone:
    <<: *os
    ref: stable/2024.1
  glance: *os
  cinder: &pinned
    <<: *os
    ref: 20.0.0
  heat: *pinned
community:                     # a group with no variables of its own
  consul:
    source: "%{git_protocol}://git.example.org/%{author}/puppet-consul"
    dest: "%{destdir}consul"
    author: solarkennedy       # entry variables override the group's
    ref: 07d691ff26108d44f2142e6a181e2f154dc921e9   # a commit
  selinux:
    source: "%{git_protocol}://git.example.org/%{author}/puppet-selinux"
    dest: "%{destdir}selinux"
    author: jfryman
    #ref: 1.2.0                # comments are ignored
puppetlabs:
  author: puppetlabs
  source: "%{git_protocol}://git.example.org/%{author}/puppetlabs-%{name}"
  stdlib:
  apt: {ref: 9.1.0}
`

func walk(t *testing.T, data string) *reposyaml.File {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(data), &doc); err != nil {
		t.Fatal(err)
	}
	return reposyaml.Walk(&doc)
}

func TestWalk(t *testing.T) {
	f := walk(t, stacktira)
	if len(f.Problems) > 0 {
		t.Fatalf("problems: %+v", f.Problems)
	}
	var top []string
	for _, v := range f.Vars {
		top = append(top, v.Name+"="+v.Text())
	}
	if got := strings.Join(top, " "); got != "destdir=modules/ git_protocol=https ref=master" {
		t.Errorf("top-level variables: %s", got)
	}
	var groups []string
	for _, g := range f.Groups {
		s := g.Name + "("
		for _, v := range g.Vars {
			s += v.Name + " "
		}
		s += "):"
		for _, e := range g.Entries {
			s += " " + e.Name
			for _, v := range e.Vars {
				s += "," + v.Name
			}
		}
		groups = append(groups, s)
	}
	want := []string{
		"defaults(source dest ):",
		"openstack(author ): nova,source,dest,ref keystone,ref,source,dest glance,source,dest cinder,ref,source,dest heat,ref,source,dest",
		"community(): consul,source,dest,author,ref selinux,source,dest,author",
		"puppetlabs(author source ): stdlib apt,ref",
	}
	if got := strings.Join(groups, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("groups:\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

// checkRewrite rewrites data with mirror and checks the result reads as
// data does, with each entry's source replaced.
func checkRewrite(t *testing.T, data string, mirror func(string) (string, bool)) string {
	t.Helper()
	out, err := reposyaml.Rewrite([]byte(data), mirror)
	if err != nil {
		t.Fatal(err)
	}
	before, err := config.ParseRepos("in.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	after, err := config.ParseRepos("out.yaml", out)
	if err != nil {
		t.Fatalf("the rewritten file does not parse: %v\n%s", err, out)
	}
	if len(after) != len(before) {
		t.Fatalf("%d entries after, %d before:\n%s", len(after), len(before), out)
	}
	for i, b := range before {
		a := after[i]
		want := b.URL
		if u, ok := mirror(b.Name); ok {
			want = u
		}
		if a.Name != b.Name || a.Group != b.Group || a.Dest != b.Dest || a.Ref != b.Ref || a.URL != want {
			t.Errorf("entry %s: after %+v\nwant %+v with source %s", b.Name, a, b, want)
		}
	}
	return string(out)
}

func mirrorURL(name string) string {
	return "http://mirror:8080/channels/production/git/" + name + ".git"
}

func TestRewrite(t *testing.T) {
	mirror := func(name string) (string, bool) { return mirrorURL(name), true }
	out := checkRewrite(t, stacktira, mirror)
	// Stable: rewriting the rewritten file changes nothing.
	if again, err := reposyaml.Rewrite([]byte(out), mirror); err != nil || string(again) != out {
		t.Errorf("second rewrite differs (%v):\n%s\nfirst:\n%s", err, again, out)
	}
	// The text is kept byte for byte but for the sources: every line of
	// the input without a source is in the output, in order.
	rest := out
	for _, line := range strings.Split(stacktira, "\n") {
		if strings.Contains(line, "source:") || strings.HasSuffix(line, ": *os") || strings.HasSuffix(line, ": *pinned") ||
			strings.HasSuffix(line, "stdlib:") || strings.Contains(line, "apt: {") {
			continue
		}
		i := strings.Index(rest, line+"\n")
		if i < 0 {
			t.Fatalf("line %q lost or moved:\n%s", line, out)
		}
		rest = rest[i+len(line)+1:]
	}
	for _, want := range []string{
		`  glance: {<<: *os, source: "` + mirrorURL("glance") + `"}`,
		"  cinder: &pinned\n    source: \"" + mirrorURL("cinder") + "\"\n    <<: *os\n",
		`  stdlib: {source: "` + mirrorURL("stdlib") + `"}`,
		`  apt: {source: "` + mirrorURL("apt") + `", ref: 9.1.0}`,
		"    source: \"" + mirrorURL("nova") + "\"\n    dest: \"%{destdir}nova\"\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestRewriteFallsBackToNodes(t *testing.T) {
	for name, data := range map[string]string{
		// A folded source and a multi-line plain scalar: the text edits
		// cannot tell where they end.
		"block scalar": "# keep me\ng:\n  a:\n    source: >-\n      https://h/a\n    ref: v1\n",
		"multi-line":   "g:\n  a:\n    source: https://h/\n      a\n",
		// heat aliases cinder, whose own source the text edit would set.
		"missing entry": stacktira,
	} {
		t.Run(name, func(t *testing.T) {
			out := checkRewrite(t, data, func(name string) (string, bool) { return mirrorURL(name), name != "heat" })
			if strings.Contains(out, "!!merge") {
				t.Errorf("merge keys written with their tag:\n%s", out)
			}
			if strings.Contains(data, "# keep me") && !strings.Contains(out, "# keep me") {
				t.Errorf("comment lost:\n%s", out)
			}
		})
	}
}

func TestRewriteRefusesBadFiles(t *testing.T) {
	_, err := reposyaml.Rewrite([]byte("g:\n  a: [x]\n"), func(string) (string, bool) { return "u", true })
	if err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("err = %v, want the problem at line 2", err)
	}
	out, err := reposyaml.Rewrite(nil, func(string) (string, bool) { return "u", true })
	if err != nil || len(out) != 0 {
		t.Errorf("empty file: %q, %v", out, err)
	}
}

func TestPairsMergeOrder(t *testing.T) {
	var doc yaml.Node
	src := "a: &a {x: 1, y: 1}\nb: &b {y: 2, z: 2}\nc: {<<: [*a, *b], x: 3}\n"
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	ps, probs := reposyaml.Pairs(doc.Content[0].Content[5])
	got := map[string]string{}
	for _, p := range ps {
		got[p.Key.Value] = p.Value.Value
	}
	if want := map[string]string{"x": "3", "y": "1", "z": "2"}; len(probs) > 0 || !maps.Equal(got, want) {
		t.Errorf("pairs %v (problems %v), want %v", got, probs, want)
	}
}
