package config

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/fuzzguard"
)

// Fuzz targets for both files an operator writes. `go test` replays
// testdata/fuzz/FuzzXxx and the f.Add seeds; `make fuzz` explores.

// laughs is a YAML alias bomb: each level refers to the one before nine
// times, so a walker that expands aliases visits 9^depth nodes.
func laughs(depth int) string {
	var b strings.Builder
	b.WriteString("a0: &a0 [x]\n")
	for i := 1; i <= depth; i++ {
		b.WriteString("a" + strconv.Itoa(i) + ": &a" + strconv.Itoa(i) + " [")
		for j := 0; j < 9; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("*a" + strconv.Itoa(i-1))
		}
		b.WriteString("]\n")
	}
	return b.String()
}

// FuzzParse: mirrord.yaml. Every refusal is an *Error naming the file;
// an accepted config has valid, unique source names.
func FuzzParse(f *testing.F) {
	if data, err := os.ReadFile("testdata/mirrord.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("listen: 127.0.0.1:8080\nfile:\n  - name: f\n    files: [{url: http://h/x, sha256: " + strings.Repeat("ab", 32) + "}]\n"))
	f.Add([]byte("base: &b {retries: 2}\nsync:\n  <<: *b\n  interval: 6h\n"))
	f.Add([]byte(laughs(9)))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Arm()()
		cfg, err := Parse("/etc/mirrord/mirrord.yaml", data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "mirrord.yaml") {
				t.Fatalf("error is not a config *Error naming the file: %T %v", err, err)
			}
			return
		}
		names := cfg.SourceNames()
		for _, n := range names {
			kind, name, ok := strings.Cut(n, "/")
			if !ok || kind == "" || !ValidName(name) {
				t.Fatalf("accepted source name %q", n)
			}
		}
		if len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) {
			t.Fatalf("duplicate source names accepted: %v", names)
		}
	})
}

// FuzzParseRepos: repos.yaml. Whatever the format's details, a parse
// either fails naming the file or yields repos with a name and a source,
// sorted by name, each name once.
func FuzzParseRepos(f *testing.F) {
	if data, err := os.ReadFile("testdata/repos.yaml"); err == nil {
		f.Add(data)
	}
	f.Add([]byte("github: https://upstream.example\npuppetlabs:\n  author: puppetlabs\n  stdlib:\n    source: \"%{github}/%{author}/puppetlabs-stdlib\"\n    dest: modules/stdlib\n    ref: main\n"))
	f.Add([]byte("a: \"%{b}\"\nb: \"%{a}\"\ng:\n  r: {source: \"%{a}\"}\n"))
	f.Add([]byte(laughs(9)))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Arm()()
		repos, err := ParseRepos("repos.yaml", data)
		if err != nil {
			if !strings.Contains(err.Error(), "repos.yaml") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for i, r := range repos {
			if r.Name == "" || r.URL == "" {
				t.Fatalf("repo %d accepted without a name or source: %+v", i, r)
			}
			if i > 0 && repos[i-1].Name >= r.Name {
				t.Fatalf("repos not sorted by unique name: %q then %q", repos[i-1].Name, r.Name)
			}
		}
	})
}
