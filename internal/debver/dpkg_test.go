package debver

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/requiretool"
)

// needTool skips when a tool is missing, except under CI where it fails.
func needTool(t *testing.T, name string) {
	t.Helper()
	requiretool.Path(t, name)
}

// genVersion makes a random valid version, biased towards the characters
// and shapes where comparison rules are subtle.
func genVersion(r *rand.Rand) string {
	const upChars = "0123456789.+~-abzAZ"
	const revChars = "0123456789.+~abz"
	var b strings.Builder
	if r.IntN(4) == 0 {
		fmt.Fprintf(&b, "%d:", r.IntN(3))
	}
	b.WriteByte(byte('0' + r.IntN(10)))
	for n := r.IntN(6); n > 0; n-- {
		b.WriteByte(upChars[r.IntN(len(upChars))])
	}
	if r.IntN(3) > 0 || strings.Contains(b.String(), "-") {
		b.WriteByte('-')
		b.WriteByte(revChars[r.IntN(len(revChars))])
		for n := r.IntN(3); n > 0; n-- {
			b.WriteByte(revChars[r.IntN(len(revChars))])
		}
	}
	return b.String()
}

// genPairs returns n pairs; a third are near-equal mutations of each other
// so that equality and single-character differences are common.
func genPairs(n int, seed uint64) [][2]string {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][2]string, 0, n)
	for len(out) < n {
		a := genVersion(r)
		b := genVersion(r)
		if r.IntN(3) == 0 {
			b = mutate(r, a)
		}
		if !strictValid(b) {
			continue
		}
		out = append(out, [2]string{a, b})
	}
	return out
}

// strictValid reports whether dpkg accepts v without even a warning
// (Dpkg::Version refuses the versions dpkg only warns about).
func strictValid(v string) bool {
	p, err := Parse(v)
	if err != nil || !isDigit(p.Upstream[0]) {
		return false
	}
	ok := func(s, extra string) bool {
		for i := 0; i < len(s); i++ {
			if !isDigit(s[i]) && !isAlpha(s[i]) && !strings.ContainsRune(extra, rune(s[i])) {
				return false
			}
		}
		return true
	}
	return ok(p.Upstream, ".+~-:") && ok(p.Revision, ".+~")
}

func mutate(r *rand.Rand, v string) string {
	i := r.IntN(len(v) + 1)
	switch r.IntN(4) {
	case 0:
		return v[:i] + "~" + v[i:]
	case 1:
		return v[:i] + "0" + v[i:]
	case 2:
		return v + []string{"", "+b1", "~1", ".0", "a"}[r.IntN(5)]
	}
	return v
}

// TestCompareAgainstDpkgPerl checks thousands of generated pairs against
// Dpkg::Version, dpkg's reference implementation in libdpkg-perl, in one
// perl process.
func TestCompareAgainstDpkgPerl(t *testing.T) {
	needTool(t, "perl")
	if err := exec.Command("perl", "-MDpkg::Version", "-e1").Run(); err != nil {
		requiretool.Missing(t, "perl module Dpkg::Version (libdpkg-perl, from dpkg-dev) is not available: "+err.Error())
	}
	pairs := genPairs(5000, 42)
	var in strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&in, "%s %s\n", p[0], p[1])
	}
	cmd := exec.Command("perl", "-MDpkg::Version", "-ne",
		`chomp; my ($a, $b) = split / /; my $c = version_compare($a, $b); print $c <=> 0, "\n";`)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("perl: %v", err)
	}
	checkResults(t, "Dpkg::Version", pairs, out)
}

// TestCompareAgainstDpkg checks generated pairs against the dpkg binary
// itself. Starting dpkg per pair is slow on some hosts, so the sample is
// smaller; MIRRORD_DPKG_PAIRS raises it.
func TestCompareAgainstDpkg(t *testing.T) {
	needTool(t, "dpkg")
	n := 200
	if s := os.Getenv("MIRRORD_DPKG_PAIRS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	if testing.Short() {
		n = 30
	}
	pairs := genPairs(n, 7)
	var in strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&in, "%s %s\n", p[0], p[1])
	}
	script := `while read a b; do
	  if dpkg --compare-versions "$a" lt "$b"; then echo -1
	  elif dpkg --compare-versions "$a" eq "$b"; then echo 0
	  else echo 1; fi
	done`
	cmd := exec.Command("sh", "-c", script)
	cmd.Stdin = strings.NewReader(in.String())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh/dpkg: %v", err)
	}
	checkResults(t, "dpkg --compare-versions", pairs, out)
}

func checkResults(t *testing.T, ref string, pairs [][2]string, out []byte) {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	i, bad := 0, 0
	for ; sc.Scan(); i++ {
		want, err := strconv.Atoi(sc.Text())
		if err != nil || i >= len(pairs) {
			t.Fatalf("%s: unexpected output line %d %q", ref, i, sc.Text())
		}
		p := pairs[i]
		if got := Compare(p[0], p[1]); got != want {
			if bad++; bad <= 20 {
				t.Errorf("Compare(%q, %q) = %d, %s says %d", p[0], p[1], got, ref, want)
			}
		}
	}
	if i != len(pairs) {
		t.Fatalf("%s answered %d of %d pairs", ref, i, len(pairs))
	}
	if bad > 0 {
		t.Errorf("%d of %d pairs disagree with %s", bad, len(pairs), ref)
	}
}
