package rpmver

import "testing"

func dep(name string, f Flags, evr string) Dep {
	return Dep{Name: name, Flags: f, EVR: ParseEVR(evr)}
}

func TestSatisfies(t *testing.T) {
	cases := []struct {
		name     string
		provide  Dep
		require  Dep
		expected bool
	}{
		{"unversioned require", dep("foo", EQ, "1.0-1"), dep("foo", 0, ""), true},
		{"unversioned provide", dep("foo", 0, ""), dep("foo", GE, "9"), true},
		{"other name", dep("foo", EQ, "1.0-1"), dep("bar", 0, ""), false},
		{"ge met", dep("foo", EQ, "1.2-1"), dep("foo", GE, "1.0"), true},
		{"ge equal", dep("foo", EQ, "1.0-1"), dep("foo", GE, "1.0"), true},
		{"ge unmet", dep("foo", EQ, "0.9-1"), dep("foo", GE, "1.0"), false},
		{"gt equal unmet", dep("foo", EQ, "1.0-1"), dep("foo", GT, "1.0-1"), false},
		{"lt met", dep("foo", EQ, "0.9-1"), dep("foo", LT, "1.0"), true},
		{"lt unmet", dep("foo", EQ, "1.0-1"), dep("foo", LT, "1.0"), false},
		{"le release-less equal", dep("foo", EQ, "1.0-1"), dep("foo", LE, "1.0"), true},
		{"eq without release matches any release", dep("foo", EQ, "1.0-7"), dep("foo", EQ, "1.0"), true},
		{"eq release differs", dep("foo", EQ, "1.0-7"), dep("foo", EQ, "1.0-8"), false},
		{"eq exact", dep("foo", EQ, "2:1.0-7"), dep("foo", EQ, "2:1.0-7"), true},
		{"epoch wins", dep("foo", EQ, "1:0.1-1"), dep("foo", GE, "0:9.0"), true},
		{"epoch too low", dep("foo", EQ, "1:9.0-1"), dep("foo", GE, "2:0.1"), false},
		{"missing epoch vs positive", dep("foo", EQ, "9.0-1"), dep("foo", GE, "1:0.1"), false},
		{"missing epoch vs zero", dep("foo", EQ, "1.0-1"), dep("foo", GE, "0:1.0"), true},
		{"tilde prerelease too old", dep("foo", EQ, "1.0~rc1-1"), dep("foo", GE, "1.0"), false},
		{"caret snapshot new enough", dep("foo", EQ, "1.0^git1-1"), dep("foo", GT, "1.0-1"), true},
		{"provide range GE meets LT", dep("foo", GE, "2.0"), dep("foo", LT, "3.0"), true},
		{"provide range LT misses GT", dep("foo", LT, "2.0"), dep("foo", GT, "3.0"), false},
	}
	for _, c := range cases {
		if got := c.provide.Satisfies(c.require); got != c.expected {
			t.Errorf("%s: %v satisfies %v = %v, want %v", c.name, c.provide, c.require, got, c.expected)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, s := range []string{"", "EQ", "LT", "LE", "GT", "GE"} {
		f, err := ParseFlags(s)
		if err != nil || f.String() != s {
			t.Errorf("ParseFlags(%q) = %v, %v", s, f, err)
		}
	}
	if _, err := ParseFlags("NE"); err == nil {
		t.Error("ParseFlags(NE): want an error")
	}
	if s := dep("foo", GE, "1:2.0-3").String(); s != "foo >= 1:2.0-3" {
		t.Errorf("String = %q", s)
	}
}
