// Package rpmver compares RPM versions the way rpm does (rpmvercmp, with
// epochs, "~" and "^") and matches versioned dependencies against provides
// (rpm's range overlap), for dependency closure over yum metadata.
package rpmver

import (
	"bytes"
	"strings"
)

// Compare compares two version (or release) strings with rpm's rpmvercmp
// algorithm and returns -1, 0 or 1. Strings are split into alternating
// numeric and alphabetic segments (anything else separates segments);
// numeric segments compare as numbers and are newer than alphabetic ones;
// "~" sorts before everything, even the end of the string ("1.0~rc1" <
// "1.0"); "^" sorts after the end of the string but before any other
// segment ("1.0" < "1.0^git1" < "1.0.1").
func Compare(a, b string) int {
	if a == b {
		return 0
	}
	one, two := []byte(a), []byte(b)
	for len(one) > 0 || len(two) > 0 {
		one, two = skipSeparators(one), skipSeparators(two)
		if r, marked := tilde(one, two); marked {
			if r != 0 {
				return r
			}
			one, two = one[1:], two[1:]
			continue
		}
		if r, marked := caret(one, two); marked {
			if r != 0 {
				return r
			}
			one, two = one[1:], two[1:]
			continue
		}
		if len(one) == 0 || len(two) == 0 {
			break
		}
		isNum := isDigit(one[0])
		class := isAlpha
		if isNum {
			class = isDigit
		}
		var seg1, seg2 []byte
		seg1, one = span(one, class)
		seg2, two = span(two, class)
		if len(seg2) == 0 {
			// Different segment types: numeric is newer than alphabetic.
			if isNum {
				return 1
			}
			return -1
		}
		if r := compareSegment(seg1, seg2, isNum); r != 0 {
			return r
		}
	}
	switch {
	case len(one) == 0 && len(two) == 0:
		return 0
	case len(one) == 0:
		return -1
	}
	return 1
}

// tilde handles a "~" at the head of one or two: it sorts before anything,
// the end of the string included. marked is false when neither has one;
// r is 0 when both do (the caller consumes them).
func tilde(one, two []byte) (r int, marked bool) {
	h1, h2 := head(one), head(two)
	switch {
	case h1 != '~' && h2 != '~':
		return 0, false
	case h1 != '~':
		return 1, true
	case h2 != '~':
		return -1, true
	}
	return 0, true
}

// caret handles a "^" at the head of one or two: it sorts after the end of
// the string but before any other segment.
func caret(one, two []byte) (r int, marked bool) {
	h1, h2 := head(one), head(two)
	switch {
	case h1 != '^' && h2 != '^':
		return 0, false
	case h1 == 0:
		return -1, true
	case h2 == 0:
		return 1, true
	case h1 != '^':
		return 1, true
	case h2 != '^':
		return -1, true
	}
	return 0, true
}

// compareSegment compares two segments of the same type.
func compareSegment(s1, s2 []byte, numeric bool) int {
	if numeric {
		s1, s2 = bytes.TrimLeft(s1, "0"), bytes.TrimLeft(s2, "0")
		if len(s1) != len(s2) {
			if len(s1) > len(s2) {
				return 1
			}
			return -1
		}
	}
	return bytes.Compare(s1, s2)
}

func head(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// skipSeparators drops leading bytes that are neither alphanumeric nor a
// "~" or "^" marker.
func skipSeparators(b []byte) []byte {
	for len(b) > 0 && !isAlnum(b[0]) && b[0] != '~' && b[0] != '^' {
		b = b[1:]
	}
	return b
}

func span(b []byte, in func(byte) bool) (seg, rest []byte) {
	i := 0
	for i < len(b) && in(b[i]) {
		i++
	}
	return b[:i], b[i:]
}

// rpm uses ASCII-only classification regardless of locale.
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
func isAlnum(c byte) bool { return isDigit(c) || isAlpha(c) }

// EVR is an [epoch:]version[-release] triple. An empty Epoch means "no
// epoch" (compared as 0); HasRelease distinguishes "1.0" (no release) from
// "1.0-" (an empty release), as rpm does.
type EVR struct {
	Epoch      string
	Version    string
	Release    string
	HasRelease bool
}

// ParseEVR splits s like rpm's parseEVR: the epoch is a leading run of
// digits ended by ":" (":1.0" has epoch "0"), the release whatever follows
// the last "-" after it.
func ParseEVR(s string) EVR {
	var e EVR
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	rest := s
	if i < len(s) && s[i] == ':' {
		e.Epoch = s[:i]
		if e.Epoch == "" {
			e.Epoch = "0"
		}
		rest = s[i+1:]
	}
	if j := strings.LastIndexByte(rest, '-'); j >= 0 {
		e.Version, e.Release, e.HasRelease = rest[:j], rest[j+1:], true
	} else {
		e.Version = rest
	}
	return e
}

// NewEVR builds an EVR from the separate fields of yum metadata (epoch,
// ver, rel attributes); an empty rel means no release.
func NewEVR(epoch, version, release string) EVR {
	return EVR{Epoch: epoch, Version: version, Release: release, HasRelease: release != ""}
}

// String formats e as rpm does: "[E:]V[-R]", the epoch shown unless it is
// absent or "0" (and the version holds no ':', which would otherwise read
// as an epoch separator: ":0:" must not print as "0:").
func (e EVR) String() string {
	var b strings.Builder
	if e.Epoch != "" && e.Epoch != "0" || strings.Contains(e.Version, ":") {
		b.WriteString(epochOrZero(e.Epoch))
		b.WriteByte(':')
	}
	b.WriteString(e.Version)
	if e.HasRelease {
		b.WriteByte('-')
		b.WriteString(e.Release)
	}
	return b.String()
}

// Compare orders two EVRs like rpm's rpmverCmp (and rpm.vercmp in rpm's
// Lua): epochs first (absent is 0), then versions, then releases, where a
// missing release is older than any present one.
func (e EVR) Compare(o EVR) int {
	if r := Compare(epochOrZero(e.Epoch), epochOrZero(o.Epoch)); r != 0 {
		return r
	}
	if r := Compare(e.Version, o.Version); r != 0 {
		return r
	}
	switch {
	case e.HasRelease && o.HasRelease:
		return Compare(e.Release, o.Release)
	case e.HasRelease:
		return 1
	case o.HasRelease:
		return -1
	}
	return 0
}

func epochOrZero(e string) string {
	if e == "" {
		return "0"
	}
	return e
}
