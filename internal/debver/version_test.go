package debver

import (
	"errors"
	"testing"
)

// Cases from deb-version(7), Debian Policy §5.6.12 and dpkg's own test
// suite (t/dpkg_version.t, lib/dpkg/t/t-version.c).
func TestCompare(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.0", "1.0", 0},
		{"1.0", "1.0-0", 0},     // an absent revision is equivalent to "0"
		{"0:1.0", "1.0", 0},     // epoch 0 is the default
		{"1.00", "1.0", 0},      // digit runs compare numerically
		{"1.0-01", "1.0-1", 0},  // also in the revision
		{"1:0.1", "2.0", 1},     // the epoch wins over everything
		{"2:1", "10:0", -1},     // epochs compare numerically
		{"1.0~rc1", "1.0", -1},  // '~' sorts before the end
		{"1.0~~", "1.0~~a", -1}, // the man page's chain: ~~ < ~~a < ~ < "" < a
		{"1.0~~a", "1.0~", -1},
		{"1.0~", "1.0", -1},
		{"1.0", "1.0a", -1},
		{"1.0a", "1.0+", -1}, // letters before non-letters
		{"1.0+", "1.0.", -1}, // then by ASCII
		{"1.0", "1.0.0", -1},
		{"1.0.0", "1.0+dfsg", 1}, // "." sorts after "+"
		{"2.4-1", "2.30-1", -1},
		{"1.0-1", "1.0-1.1", -1},
		{"1.0-1", "1.0-1ubuntu1", -1},
		{"1.0-1ubuntu1", "1.0-2", -1},
		{"1.0-1~bpo1", "1.0-1", -1},
		{"1.2-3-4", "1.2-3-5", -1}, // the revision is after the last '-'
		{"1.2-3-4", "1.2-3", 1},    // upstream "1.2-3" > "1.2"
		{"a", "1", 1},              // non-digit start: dpkg warns, still compares
		{"1-a", "1-+", -1},
		{"1.0~beta1~git1", "1.0~beta1", -1},
		{"7.6p2-4", "7.6-0", 1},
		{"1.0.3-3", "1.0-1", 1},
		{"1.3", "1.2.2-2", 1},
		{"0.0.0+2016.01.15.git.29cc9e1b51-2", "0.0.0+2016.01.15.git.29cc9e1b51-3", -1},
		{"9223372036854775808", "9223372036854775807", 1}, // no overflow on long digit runs
		{"000000000000000000000001", "1", 0},
	}
	for _, tt := range tests {
		a, b := MustParse(tt.a), MustParse(tt.b)
		if got := a.Compare(b); got != tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := b.Compare(a); got != -tt.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", tt.b, tt.a, got, -tt.want)
		}
		if got := Compare(tt.a, tt.b); got != tt.want {
			t.Errorf("Compare strings (%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in   string
		want Version
	}{
		{"1.0", Version{0, "1.0", ""}},
		{"1:2.3-4", Version{1, "2.3", "4"}},
		{"  1.0-1\n", Version{0, "1.0", "1"}},
		{"0:1.0", Version{0, "1.0", ""}},
		{"1.2-3-4", Version{0, "1.2-3", "4"}},
		{"1:2:3-4", Version{1, "2:3", "4"}}, // colons may follow in upstream
		{"2147483647:1", Version{2147483647, "1", ""}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	if s := MustParse("0:1.0-1").String(); s != "1.0-1" {
		t.Errorf("String = %q", s)
	}
	if s := MustParse("3:1.0").String(); s != "3:1.0" {
		t.Errorf("String = %q", s)
	}
}

// The errors dpkg refuses (not the ones it only warns about).
func TestParseErrors(t *testing.T) {
	for _, in := range []string{"", "   ", "1.0 1", ":1.0", "a:1.0", "-1:1.0", "2147483648:1", "1:", "1.0-", "1:-1", "-1"} {
		if v, err := Parse(in); err == nil || !errors.Is(err, ErrInvalid) {
			t.Errorf("Parse(%q) = %+v, %v; want an ErrInvalid error", in, v, err)
		}
	}
}

func TestCompareInvalid(t *testing.T) {
	if Compare("", "1.0") != -1 || Compare("1.0", "") != 1 || Compare("", "") != 0 {
		t.Error("invalid versions must sort first and consistently")
	}
}
