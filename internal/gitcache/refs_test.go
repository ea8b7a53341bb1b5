package gitcache

import (
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/go-git/go-git/v5/plumbing"

	"github.com/mirrord/mirrord/internal/config"
)

const (
	idA = "1111111111111111111111111111111111111111"
	idB = "2222222222222222222222222222222222222222"
)

func TestRefSet(t *testing.T) {
	refs := []*plumbing.Reference{
		plumbing.NewSymbolicReference(plumbing.HEAD, "refs/heads/main"),
		plumbing.NewReferenceFromStrings("refs/heads/main", idA),
		plumbing.NewReferenceFromStrings("refs/tags/v1", idB),
		plumbing.NewReferenceFromStrings("refs/pull/7/head", idB),
		plumbing.NewReferenceFromStrings("refs/changes/01/1/1", idB),
		plumbing.NewReferenceFromStrings("refs/heads/bad..name", idB),
	}
	rs := newRefSet(refs)
	want := map[string]string{"HEAD": "ref: refs/heads/main", "refs/heads/main": idA, "refs/tags/v1": idB}
	if got := rs.Record(); !maps.Equal(got, want) {
		t.Fatalf("Record() = %v, want %v", got, want)
	}
	back := RefSetOf(rs.Record())
	if !back.Equal(rs) || back.Pin() != rs.Pin() {
		t.Error("RefSetOf(Record()) is not the same set")
	}
	if !validPin(rs.Pin()) {
		t.Errorf("pin %q is not valid", rs.Pin())
	}
	moved := RefSetOf(map[string]string{"HEAD": "ref: refs/heads/main", "refs/heads/main": idB, "refs/tags/v1": idB})
	noHead := RefSetOf(map[string]string{"refs/heads/main": idA, "refs/tags/v1": idB})
	for _, other := range []RefSet{moved, noHead} {
		if other.Pin() == rs.Pin() || other.Equal(rs) {
			t.Errorf("%v and %v share a pin", other, rs)
		}
	}
	if items := rs.Items(); len(items) != 3 || items[2].Name != "HEAD" {
		t.Errorf("Items() = %v", items)
	}
	// HEAD pointing outside the set is dropped.
	dangling := newRefSet([]*plumbing.Reference{plumbing.NewSymbolicReference(plumbing.HEAD, "refs/heads/gone")})
	if dangling.Head != "" {
		t.Errorf("dangling HEAD kept: %q", dangling.Head)
	}
	if p := pinOf(string(namespaceRef(rs.Pin(), "refs/heads/main"))); p != rs.Pin() {
		t.Errorf("pinOf = %q", p)
	}
}

func TestFullCloneKey(t *testing.T) {
	pkt := func(lines ...string) []byte {
		var b []byte
		for _, l := range lines {
			if l == "0000" {
				b = append(b, l...)
				continue
			}
			b = append(b, pktLine(l)...)
		}
		return b
	}
	clone := pkt("want "+idA+" multi_ack_detailed side-band-64k agent=git/2.39.5\n", "want "+idB+"\n", "0000", "done\n")
	other := pkt("want "+idA+" multi_ack_detailed side-band-64k agent=git/2.45.0 session-id=x\n", "want "+idB+"\n", "0000", "done\n")
	k1, ok1 := fullCloneKey(clone)
	k2, ok2 := fullCloneKey(other)
	if !ok1 || !ok2 || k1 != k2 {
		t.Errorf("clones differing only in agent: keys %q %v, %q %v; want one key", k1, ok1, k2, ok2)
	}
	for name, body := range map[string][]byte{
		"have":      pkt("want "+idA+" side-band-64k\n", "0000", "have "+idB+"\n", "done\n"),
		"shallow":   pkt("want "+idA+" side-band-64k\n", "deepen 1\n", "0000", "done\n"),
		"filter":    pkt("want "+idA+" filter\n", "filter blob:none\n", "0000", "done\n"),
		"no done":   pkt("want "+idA+"\n", "0000"),
		"v2":        append(pkt("command=fetch\n"), "0001"...),
		"truncated": clone[:len(clone)-3],
		"garbage":   []byte("zzzz"),
	} {
		if k, ok := fullCloneKey(body); ok {
			t.Errorf("%s: cacheable (key %s), want not", name, k)
		}
	}
}

func TestInlineReposFile(t *testing.T) {
	repos := []config.GitRepo{{Name: "stdlib", URL: "https://h/stdlib.git", Ref: "v1.0", Dest: "modules/stdlib"}, {Name: "apt", URL: "/srv/git/apt: odd # name"}}
	data, err := InlineReposFile("mirrord.yaml", repos)
	if err != nil {
		t.Fatal(err)
	}
	got, err := config.ParseRepos("inline.yaml", data)
	if err != nil {
		t.Fatalf("%v\n%s", err, data)
	}
	for i := range got {
		got[i].File, got[i].Line, got[i].Group = "", 0, ""
	}
	want := []config.GitRepo{repos[1], repos[0]}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v\n%s", got, want, data)
	}
}

func TestClientConfig(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"https://forge.example/org/repo", "\tinsteadOf = https://forge.example/org/repo\n\tinsteadOf = https://forge.example/org/repo.git\n"},
		{"https://forge.example/org/repo.git", "\tinsteadOf = https://forge.example/org/repo.git\n\tinsteadOf = https://forge.example/org/repo\n"},
		{"/srv/git/my repo", "\tinsteadOf = \"/srv/git/my repo\"\n\tinsteadOf = \"/srv/git/my repo.git\"\n"},
	} {
		s, err := New(Repo{Name: "repo", URL: tc.url, BaseDir: "/"}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		got := s.ClientConfig("http://mirror/snapshots/20260101T000000Z/git/repo", "")
		if !strings.Contains(got, "[url \"http://mirror/snapshots/20260101T000000Z/git/repo.git\"]\n"+tc.want) {
			t.Errorf("%s:\n%s", tc.url, got)
		}
	}
}
