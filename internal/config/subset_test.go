package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSubsetKeys(t *testing.T) {
	cfg, err := Parse("/etc/m/m.yaml", []byte(`
apt:
  - {name: d, url: "http://x/debian", suites: [bookworm], insecure_skip_verify: true,
     filter_from: node.list, filter_check: true, retain: {versions: 3}, dep11: true}
yum:
  - {name: a, url: "http://x/a", gpgkey: k, filter: [bash], filter_with_deps: true, filter_check: true}
  - {name: b, url: "http://x/b", gpgkey: k, filter_from: rpms.list, retain: {versions: 2}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Apt[0]; a.FilterFrom != filepath.Join("/etc/m", "node.list") || !a.FilterCheck || a.Retain == nil || a.Retain.Versions != 3 || !a.DEP11 {
		t.Errorf("apt: %+v", a)
	}
	if !cfg.Yum[0].FilterCheck || cfg.Yum[1].FilterFrom != "/etc/m/rpms.list" || cfg.Yum[1].Retain.Versions != 2 || cfg.Yum[1].IsVerbatim() {
		t.Errorf("yum: %+v %+v (filter_from is not verbatim)", cfg.Yum[0], cfg.Yum[1])
	}
}

func TestSubsetKeyErrors(t *testing.T) {
	tests := []struct{ src, want string }{
		{"filter_check: true", "m.yaml:3: apt[0].filter_check: filter_check needs a filter or filter_from"},
		{"filter: [x]\n    filter_check: true", "m.yaml:4: apt[0].filter_check: filter_check needs filter_with_deps: true"},
		{"filter_from: n.list\n    verbatim: true", "m.yaml:4: apt[0].verbatim: verbatim: true cannot be combined with filter_from"},
		{"retain: {versions: 0}", "m.yaml:3: apt[0].retain.versions: must be at least 1"},
		{"retain: {version: 2}", `m.yaml:3: unknown key "version" in apt[0].retain (did you mean "versions"?)`},
		{"retain: {versions: 2}\n    verbatim: true", "apt[0].verbatim: verbatim: true cannot be combined with retain"},
		{"filter_check: yes please", "apt[0].filter_check"},
	}
	for _, tt := range tests {
		_, err := Parse("m.yaml", []byte("apt:\n  - name: d\n    "+tt.src+"\n    url: http://x/debian\n    suites: [s]\n    insecure_skip_verify: true\n"))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s:\n err = %v\nwant %q", tt.src, err, tt.want)
		}
	}
}

func TestAdvisoriesKey(t *testing.T) {
	cfg, err := Parse("m.yaml", []byte(`
yum:
  - {name: a, url: "http://x/a", gpgkey: k, advisories: {types: [security], severities: [Critical, Important]}}
`))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Yum[0].Advisories; a == nil || a.Types[0] != "security" || len(a.Severities) != 2 || cfg.Yum[0].IsVerbatim() {
		t.Errorf("advisories: %+v", cfg.Yum[0])
	}
	for src, want := range map[string]string{
		"advisories: {types: []}":                       "m.yaml:3: yum[0].advisories.types: at least one advisory type is required",
		"advisories: {types: [securty]}":                `m.yaml:3: yum[0].advisories.types[0]: unknown advisory type "securty"`,
		"advisories: {types: [security], sevrity: [x]}": `m.yaml:3: unknown key "sevrity" in yum[0].advisories`,
	} {
		_, err := Parse("m.yaml", []byte("yum:\n  - name: a\n    "+src+"\n    url: http://x/a\n    gpgkey: k\n"))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s:\n err = %v\nwant %q", src, err, want)
		}
	}
}

func TestVerbatimConflicts(t *testing.T) {
	set := map[string]bool{"filter": true, "retain": true, "advisories": false}
	if got := VerbatimConflicts(true, set); !slices.Equal(got, []string{"filter", "retain"}) {
		t.Errorf("VerbatimConflicts = %v", got)
	}
	if got := VerbatimConflicts(false, set); got != nil {
		t.Errorf("not verbatim: %v", got)
	}
}
