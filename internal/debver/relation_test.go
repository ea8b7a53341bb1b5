package debver

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseRelations(t *testing.T) {
	tests := []struct {
		in   string
		want string // the groups re-rendered, separated by ", "
	}{
		{"libc6 (>= 2.34)", "libc6 (>= 2.34)"},
		{"a, b | c (<< 2:1.0~rc1-1), d:any", "a, b | c (<< 2:1.0~rc1-1), d:any"},
		{"a(>=1),b", "a (>= 1), b"},
		{"a (< 1), b (> 2)", "a (<= 1), b (>= 2)"}, // obsolete operators
		{"python3:any (>= 3.11~)", "python3:any (>= 3.11~)"},
		{"Foo-Bar+x.y", "foo-bar+x.y"}, // names are case-insensitive
		{"a,\n b |\n  c", "a, b | c"},
		{"a, , b,", "a, b"},
		{"", ""},
		{"libfoo [amd64 i386], bar [!hurd-i386 !kfreebsd-amd64] <!nocheck>", "libfoo [amd64 i386], bar [!hurd-i386 !kfreebsd-amd64] <!nocheck>"},
		{"gcc:native (= 12)", "gcc:native (= 12)"},
	}
	for _, tt := range tests {
		groups, err := ParseRelations(tt.in)
		if err != nil {
			t.Errorf("ParseRelations(%q): %v", tt.in, err)
			continue
		}
		var got string
		for i, g := range groups {
			if i > 0 {
				got += ", "
			}
			got += g.String()
		}
		if got != tt.want {
			t.Errorf("ParseRelations(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseRelationFields(t *testing.T) {
	r, err := ParseRelation(" libc6:amd64 ( >= 1:2.3-4 ) ")
	if err != nil {
		t.Fatal(err)
	}
	want := Relation{Name: "libc6", ArchQual: "amd64", Op: OpGreaterEq, Version: Version{1, "2.3", "4"}}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got %+v, want %+v", r, want)
	}
}

func TestParseRelationErrors(t *testing.T) {
	for _, in := range []string{
		"(>= 1)", "a (>= 1", "a (=> 1)", "a (>= )", "a (~ 1)", "a b", "a:", "a [amd64 !i386]", "a [", "a [ ]",
		"a (>= 1.0-)",
	} {
		if _, err := ParseRelations(in); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseRelations(%q): err = %v, want ErrInvalid", in, err)
		}
	}
}

func TestParseProvides(t *testing.T) {
	ps, err := ParseProvides("mail-transport-agent, foo (= 1.2-3), bar:any")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 3 || ps[1].Name != "foo" || ps[1].Op != OpEq || ps[1].Version.String() != "1.2-3" {
		t.Errorf("got %v", ps)
	}
	for _, bad := range []string{"a | b", "a (>= 1)"} {
		if _, err := ParseProvides(bad); err == nil {
			t.Errorf("ParseProvides(%q): want error", bad)
		}
	}
}

func TestSatisfiedBy(t *testing.T) {
	tests := []struct {
		rel, ver string
		want     bool
	}{
		{"a", "0", true},
		{"a (>= 1.0)", "1.0", true},
		{"a (>= 1.0)", "1.0~rc1", false},
		{"a (>> 1.0)", "1.0", false},
		{"a (>> 1.0)", "1.0-1", true},
		{"a (<< 2)", "1:1", false}, // the epoch makes it newer
		{"a (<= 2)", "2", true},
		{"a (<= 2)", "2.0", false}, // 2.0 sorts after 2
		{"a (= 1.0)", "1.0-0", true},
		{"a (= 1.0)", "1.0-1", false},
		{"a (< 1.0)", "1.0", true}, // obsolete "<" is "<="
	}
	for _, tt := range tests {
		r, err := ParseRelation(tt.rel)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.SatisfiedBy(MustParse(tt.ver)); got != tt.want {
			t.Errorf("%q satisfied by %q = %v, want %v", tt.rel, tt.ver, got, tt.want)
		}
	}
}

func TestAppliesTo(t *testing.T) {
	r, _ := ParseRelation("a [amd64 arm64]")
	n, _ := ParseRelation("a [!amd64]")
	if !r.AppliesTo("amd64") || r.AppliesTo("i386") || n.AppliesTo("amd64") || !n.AppliesTo("i386") {
		t.Error("architecture restrictions misapplied")
	}
	if plain, _ := ParseRelation("a"); !plain.AppliesTo("s390x") {
		t.Error("unrestricted relation must apply everywhere")
	}
}

func TestArchMatches(t *testing.T) {
	plain, _ := ParseRelation("p")
	anyQ, _ := ParseRelation("p:any")
	i386, _ := ParseRelation("p:i386")
	tests := []struct {
		r        Relation
		from     string
		cand     string
		ma       MultiArch
		want     bool
		describe string
	}{
		{plain, "amd64", "amd64", MANo, true, "same architecture"},
		{plain, "amd64", "all", MANo, true, "arch all counts as native"},
		{plain, "amd64", "i386", MANo, false, "foreign arch, not Multi-Arch"},
		{plain, "amd64", "i386", MASame, false, "Multi-Arch: same is not cross-arch"},
		{plain, "amd64", "i386", MAForeign, true, "Multi-Arch: foreign satisfies any arch"},
		{plain, "amd64", "i386", MAAllowed, false, "allowed needs :any"},
		{anyQ, "amd64", "i386", MAAllowed, true, ":any with allowed"},
		{anyQ, "amd64", "i386", MANo, false, ":any without allowed"},
		{anyQ, "amd64", "amd64", MANo, true, ":any, same arch"},
		{i386, "amd64", "i386", MANo, true, "explicit arch"},
		{i386, "amd64", "amd64", MAForeign, false, "explicit arch, wrong arch"},
	}
	for _, tt := range tests {
		if got := ArchMatches(tt.r, tt.from, tt.cand, tt.ma); got != tt.want {
			t.Errorf("%s: ArchMatches(%s from %s, cand %s %s) = %v", tt.describe, tt.r, tt.from, tt.cand, tt.ma, got)
		}
	}
	for in, want := range map[string]MultiArch{"": MANo, "same": MASame, "Foreign": MAForeign, "allowed": MAAllowed} {
		if got, err := ParseMultiArch(in); err != nil || got != want {
			t.Errorf("ParseMultiArch(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseMultiArch("sometimes"); err == nil {
		t.Error("ParseMultiArch accepted garbage")
	}
}
