package rpmver

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/requiretool"
)

// needRPM returns the rpm binary, skipping without it unless CI=true.
func needRPM(t *testing.T) string {
	t.Helper()
	return requiretool.Path(t, "rpm")
}

// rpmVercmp asks the real rpm (its Lua rpm.vercmp, which is rpmverCmp
// over parsed EVRs) to compare every pair, in one process.
func rpmVercmp(t *testing.T, pairs [][2]string) []int {
	t.Helper()
	rpm := needRPM(t)
	var in strings.Builder
	for _, p := range pairs {
		fmt.Fprintf(&in, "%s\t%s\n", p[0], p[1])
	}
	path := filepath.Join(t.TempDir(), "pairs")
	if err := os.WriteFile(path, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	script := fmt.Sprintf(`%%{lua: for l in io.lines(%q) do local a, b = l:match("^([^\t]*)\t([^\t]*)$"); io.write(rpm.vercmp(a, b), "\n") end}`, path)
	out, err := exec.Command(rpm, "--eval", script).CombinedOutput()
	if err != nil {
		t.Fatalf("rpm --eval: %v\n%s", err, out)
	}
	var res []int
	for _, f := range strings.Fields(string(out)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("rpm output %q: %v", f, err)
		}
		res = append(res, n)
	}
	if len(res) != len(pairs) {
		t.Fatalf("rpm gave %d results for %d pairs:\n%s", len(res), len(pairs), out)
	}
	return res
}

// genVersion makes a random version-ish string from pieces that exercise
// every branch of rpmvercmp: numbers with leading zeros, letters, the
// separators, "~" and "^".
func genVersion(r *rand.Rand) string {
	pieces := []string{"0", "1", "2", "01", "10", "007", "99", "a", "b", "rc", "git", "Z", "alpha", "~", "^", ".", "_", "+", "."}
	n := 1 + r.IntN(5)
	var b strings.Builder
	for range n {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

// genEVR wraps a random version in an optional epoch and release.
func genEVR(r *rand.Rand) string {
	v := genVersion(r)
	switch r.IntN(4) {
	case 0:
		v = strconv.Itoa(r.IntN(3)) + ":" + v
	case 1:
		v = "0:" + v
	}
	if r.IntN(2) == 0 {
		v += "-" + genVersion(r)
	}
	return v
}

func TestCompareMatchesRealRPM(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var pairs [][2]string
	for _, c := range vercmpCases {
		if c.a != "" && c.b != "" && !strings.ContainsAny(c.a+c.b, "é") {
			pairs = append(pairs, [2]string{c.a, c.b})
		}
	}
	for range 4000 {
		a, b := genEVR(r), genEVR(r)
		if r.IntN(5) == 0 {
			b = a // equal pairs, and near-equal below
		}
		if r.IntN(7) == 0 {
			b = a + genVersion(r)
		}
		pairs = append(pairs, [2]string{a, b})
	}
	want := rpmVercmp(t, pairs)
	bad := 0
	for i, p := range pairs {
		if got := ParseEVR(p[0]).Compare(ParseEVR(p[1])); got != want[i] {
			bad++
			if bad <= 20 {
				t.Errorf("%q vs %q: got %d, rpm says %d", p[0], p[1], got, want[i])
			}
		}
	}
	if bad > 0 {
		t.Errorf("%d of %d pairs disagree with rpm", bad, len(pairs))
	}
}
