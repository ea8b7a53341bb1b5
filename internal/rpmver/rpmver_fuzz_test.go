package rpmver

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

// rpmOracle answers comparisons from rpm itself: one long-lived `rpm
// --eval` whose Lua reads pairs from stdin and writes rpm.vercmp (rpm's
// rpmverCmp over parsed EVRs) for each, so a fuzzer can ask thousands of
// times a second.
type rpmOracle struct {
	in  io.WriteCloser
	out *bufio.Reader
}

// newRPMOracle starts rpm. No Cleanup: a fuzz worker runs the targets
// after FuzzXxx's cleanups; rpm exits at EOF when the test binary does.
func newRPMOracle(tb testing.TB) *rpmOracle {
	tb.Helper()
	rpm := requiretool.Path(tb, "rpm")
	cmd := exec.Command(rpm, "--eval", `%{lua: for l in io.lines() do local a, b = l:match("^([^\t]*)\t([^\t]*)$"); local ok, r = pcall(rpm.vercmp, a, b); io.write(ok and tostring(r) or "E", "\n"); io.flush() end}`)
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
	return &rpmOracle{in: in, out: bufio.NewReader(out)}
}

func (o *rpmOracle) compare(a, b string) (int, error) {
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

// errRefused: rpm refuses to parse one of the versions (rpm.vercmp raises
// "invalid version", e.g. for ""); no package can carry it.
var errRefused = errors.New("rpm refuses the version")

// rpmSafe: what the line protocol can carry (and what rpm's Lua sees as
// the same string mirrord does).
func rpmSafe(s string) bool {
	return len(s) <= 64 && !strings.ContainsAny(s, "\t\n\r\x00")
}

// FuzzCompare: EVR comparison is an antisymmetric order that agrees with
// rpm on every pair; ParseEVR and String round-trip.
func FuzzCompare(f *testing.F) {
	for _, s := range [][2]string{
		{"1.0", "1.0.0"}, {"1.0~rc1", "1.0"}, {"1.0^git1", "1.0"}, {"1.0^git1", "1.0.1"},
		{"2:1.0-1", "1:9.9-9"}, {"1.0-", "1.0"}, {":1.0", "0:1.0"}, {"007", "7"},
		{"1.0a", "1.0.a"}, {"1..0", "1.0"}, {"1.0-1.el9", "1.0-1.el9_2"}, {"~~", "~"},
	} {
		f.Add(s[0], s[1])
	}
	requiretool.Path(f, "rpm")
	var o *rpmOracle
	f.Fuzz(func(t *testing.T, a, b string) {
		defer fuzzguard.Arm()()
		ea, eb := ParseEVR(a), ParseEVR(b)
		got := ea.Compare(eb)
		if back := eb.Compare(ea); back != -got {
			t.Fatalf("%q vs %q = %d but reversed = %d", a, b, got, back)
		}
		if ea.Compare(ea) != 0 || Compare(a, a) != 0 {
			t.Fatalf("%q does not equal itself", a)
		}
		if again := ParseEVR(ea.String()); again.Compare(ea) != 0 {
			t.Fatalf("ParseEVR(%q).String() = %q compares unequal after re-parsing", a, ea.String())
		}
		if !rpmSafe(a) || !rpmSafe(b) {
			return
		}
		if o == nil {
			o = newRPMOracle(t)
		}
		want, err := o.compare(a, b)
		if errors.Is(err, errRefused) {
			return
		}
		if err != nil {
			o = nil
			t.Fatalf("rpm oracle: %v", err)
		}
		if got != want {
			t.Fatalf("ParseEVR(%q).Compare(ParseEVR(%q)) = %d, rpm.vercmp says %d", a, b, got, want)
		}
	})
}
