// Package debver compares Debian package versions and parses the relation
// fields of Debian control data (Depends, Pre-Depends, Recommends,
// Provides, ...), following dpkg's rules (deb-version(7), Debian Policy
// §5.6.12 and §7.1) and the Multi-Arch specification.
package debver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrInvalid is wrapped by every parse error of this package.
var ErrInvalid = errors.New("invalid")

// Version is a parsed Debian version: [epoch:]upstream[-revision].
type Version struct {
	Epoch    uint32
	Upstream string
	Revision string
}

// Parse parses s the way dpkg does. Like dpkg it refuses an empty or
// space-containing version, a bad epoch and an empty revision; characters
// dpkg only warns about (a non-digit first character, unusual
// punctuation) are accepted, so that every version dpkg can install
// compares as dpkg compares it.
func Parse(s string) (Version, error) {
	s = strings.Trim(s, " \t\r\n") // not TrimSpace: to dpkg, "0\v" is not "0"
	if s == "" {
		return Version{}, fmt.Errorf("version %q: %w: empty", s, ErrInvalid)
	}
	if strings.ContainsAny(s, " \t\r\n\v\f") { // dpkg: embedded blanks; mirrord also refuses control characters
		return Version{}, fmt.Errorf("version %q: %w: embedded spaces or control characters", s, ErrInvalid)
	}
	var v Version
	rest := s
	if i := strings.IndexByte(s, ':'); i >= 0 {
		e, err := parseEpoch(s[:i])
		if err != nil {
			return Version{}, fmt.Errorf("version %q: %w", s, err)
		}
		v.Epoch, rest = e, s[i+1:]
	}
	v.Upstream = rest
	if i := strings.LastIndexByte(rest, '-'); i >= 0 {
		v.Upstream, v.Revision = rest[:i], rest[i+1:]
		if v.Revision == "" {
			return Version{}, fmt.Errorf("version %q: %w: empty revision after '-'", s, ErrInvalid)
		}
	}
	if v.Upstream == "" {
		return Version{}, fmt.Errorf("version %q: %w: empty upstream version", s, ErrInvalid)
	}
	return v, nil
}

func parseEpoch(s string) (uint32, error) {
	if s == "" {
		return 0, fmt.Errorf("%w: empty epoch before ':'", ErrInvalid)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%w: epoch %q is not a number", ErrInvalid, s)
		}
	}
	e, err := strconv.ParseUint(s, 10, 31) // dpkg caps epochs at INT_MAX
	if err != nil {
		return 0, fmt.Errorf("%w: epoch %q is too big", ErrInvalid, s)
	}
	return uint32(e), nil
}

// MustParse is Parse for constants in tests and tables; it panics on error.
func MustParse(s string) Version {
	v, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return v
}

// String returns the canonical form: the epoch only when non-zero, or
// when the rest holds a ':' (without "0:", "0::" would print as ":", which
// dpkg refuses).
func (v Version) String() string {
	var b strings.Builder
	if v.Epoch != 0 || strings.Contains(v.Upstream, ":") || strings.Contains(v.Revision, ":") {
		b.WriteString(strconv.FormatUint(uint64(v.Epoch), 10))
		b.WriteByte(':')
	}
	b.WriteString(v.Upstream)
	if v.Revision != "" {
		b.WriteByte('-')
		b.WriteString(v.Revision)
	}
	return b.String()
}

// Compare returns -1, 0 or +1 as v sorts before, equal to or after w.
func (v Version) Compare(w Version) int {
	switch {
	case v.Epoch < w.Epoch:
		return -1
	case v.Epoch > w.Epoch:
		return 1
	}
	if c := compareFragment(v.Upstream, w.Upstream); c != 0 {
		return c
	}
	return compareFragment(v.Revision, w.Revision)
}

// Compare parses and compares two version strings. A string that does not
// parse sorts before every valid version (and invalid ones compare as
// strings), so sorting never fails; use Parse to reject bad versions.
func Compare(a, b string) int {
	va, errA := Parse(a)
	vb, errB := Parse(b)
	switch {
	case errA != nil && errB != nil:
		return strings.Compare(a, b)
	case errA != nil:
		return -1
	case errB != nil:
		return 1
	}
	return va.Compare(vb)
}

// compareFragment is dpkg's verrevcmp: alternate runs of non-digits
// (compared character by character with order) and digits (compared
// numerically) until one side differs.
func compareFragment(a, b string) int {
	for a != "" || b != "" {
		for (a != "" && !isDigit(a[0])) || (b != "" && !isDigit(b[0])) {
			ca, cb := order(a), order(b)
			if ca != cb {
				return sign(ca - cb)
			}
			a, b = a[1:], b[1:]
		}
		a, b = trimZeros(a), trimZeros(b)
		first := 0
		for a != "" && isDigit(a[0]) && b != "" && isDigit(b[0]) {
			if first == 0 {
				first = int(a[0]) - int(b[0])
			}
			a, b = a[1:], b[1:]
		}
		if a != "" && isDigit(a[0]) {
			return 1
		}
		if b != "" && isDigit(b[0]) {
			return -1
		}
		if first != 0 {
			return sign(first)
		}
	}
	return 0
}

// order is the weight of the first character of s in a non-digit run:
// '~' sorts before everything, even the end of the string; letters sort
// before other characters. The end of a run (a digit or the end of s)
// weighs 0. Callers only advance past a character of non-zero weight or
// a '~', both of which exist, so s[1:] is safe.
func order(s string) int {
	switch {
	case s == "" || isDigit(s[0]):
		return 0
	case s[0] == '~':
		return -1
	case isAlpha(s[0]):
		return int(s[0])
	default:
		return int(s[0]) + 256
	}
}

func trimZeros(s string) string {
	for s != "" && s[0] == '0' {
		s = s[1:]
	}
	return s
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

func sign(n int) int {
	switch {
	case n < 0:
		return -1
	case n > 0:
		return 1
	}
	return 0
}
