package debver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/fuzzguard"
	"github.com/mirrord/mirrord/internal/requiretool"
)

// dpkgOracle answers comparisons from Dpkg::Version in one long-lived perl
// process (a fuzzer asks thousands of times a second); a disagreement is
// settled by the dpkg binary itself, the authority.
type dpkgOracle struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func newDpkgOracle(tb testing.TB) *dpkgOracle {
	tb.Helper()
	requiretool.All(tb, "perl", "dpkg")
	if err := exec.Command("perl", "-MDpkg::Version", "-e1").Run(); err != nil {
		requiretool.Missing(tb, "perl module Dpkg::Version (libdpkg-perl, from dpkg-dev) is not available: "+err.Error())
	}
	cmd := exec.Command("perl", "-MDpkg::Version", "-ne",
		`BEGIN { $| = 1 } chomp; my ($a, $b) = split /\t/; my $c = eval { version_compare($a, $b) <=> 0 }; print defined $c ? $c : "E", "\n";`)
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	// No Cleanup: a fuzz worker runs the targets after FuzzXxx's cleanups,
	// so the process lives as long as the test binary (perl exits at EOF).
	return &dpkgOracle{cmd: cmd, in: in, out: bufio.NewReader(out)}
}

func (o *dpkgOracle) perl(a, b string) (int, error) {
	if _, err := fmt.Fprintf(o.in, "%s\t%s\n", a, b); err != nil {
		return 0, err
	}
	line, err := o.out.ReadString('\n')
	if err != nil {
		return 0, err
	}
	line = strings.TrimSpace(line)
	if line == "E" {
		return 0, errRefused
	}
	return strconv.Atoi(line)
}

// errRefused: Dpkg::Version refuses one of the versions.
var errRefused = errors.New("Dpkg::Version refuses the version")

// dpkg asks `dpkg --compare-versions`.
func dpkgCompare(a, b string) (int, error) {
	for _, c := range []struct {
		op  string
		res int
	}{{"lt", -1}, {"eq", 0}, {"gt", 1}} {
		err := exec.Command("dpkg", "--compare-versions", a, c.op, b).Run()
		if err == nil {
			return c.res, nil
		}
		if _, exit := err.(*exec.ExitError); !exit {
			return 0, err
		}
	}
	return 0, fmt.Errorf("dpkg --compare-versions %q ? %q: no relation holds", a, b)
}

// FuzzCompare: Compare is an antisymmetric order that agrees with dpkg on
// every pair dpkg accepts without a warning; Parse and String round-trip.
func FuzzCompare(f *testing.F) {
	for _, s := range [][2]string{
		{"1.0", "1.0-0"}, {"1:0.1", "2.0"}, {"1.0~rc1", "1.0"}, {"1.0~~a", "1.0~"},
		{"1.0a", "1.0+"}, {"1.2-3-4", "1.2-3"}, {"2.30-1", "2.4-1"}, {"1.0-1~bpo1", "1.0-1"},
		{"0001", "1"}, {"1.0-1ubuntu1", "1.0-1.1"}, {"9:99999999999999999999", "9:1"},
	} {
		f.Add(s[0], s[1])
	}
	requiretool.All(f, "perl", "dpkg")
	var o *dpkgOracle
	f.Fuzz(func(t *testing.T, a, b string) {
		defer fuzzguard.Arm()()
		got := Compare(a, b)
		if back := Compare(b, a); back != -got {
			t.Fatalf("Compare(%q, %q) = %d but Compare(%q, %q) = %d", a, b, got, b, a, back)
		}
		if Compare(a, a) != 0 {
			t.Fatalf("Compare(%q, itself) != 0", a)
		}
		if v, err := Parse(a); err == nil {
			if w, err := Parse(v.String()); err != nil || w.Compare(v) != 0 {
				t.Fatalf("Parse(%q).String() = %q re-parses as %+v, %v", a, v.String(), w, err)
			}
		}
		if !strictValid(a) || !strictValid(b) || strings.TrimSpace(a) != a || strings.TrimSpace(b) != b || len(a) > 64 || len(b) > 64 {
			return
		}
		if o == nil {
			o = newDpkgOracle(t)
		}
		want, err := o.perl(a, b)
		if errors.Is(err, errRefused) {
			return // dpkg would refuse (or warn about) it too
		}
		if err != nil {
			o = nil
			t.Fatalf("Dpkg::Version oracle: %v", err)
		}
		if got == want {
			return
		}
		ref, err := dpkgCompare(a, b)
		if err != nil {
			t.Fatalf("Compare(%q, %q) = %d, Dpkg::Version says %d, dpkg fails: %v", a, b, got, want, err)
		}
		if got != ref {
			t.Fatalf("Compare(%q, %q) = %d, dpkg --compare-versions says %d (Dpkg::Version %d)", a, b, got, ref, want)
		}
		t.Logf("Dpkg::Version differs from dpkg on %q vs %q; mirrord agrees with dpkg", a, b)
	})
}
