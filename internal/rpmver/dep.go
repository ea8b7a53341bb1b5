package rpmver

import (
	"fmt"
	"strings"
)

// Flags is the comparison sense of a versioned dependency (rpm's
// RPMSENSE_LESS/GREATER/EQUAL bits). Zero means unversioned.
type Flags uint8

// Sense bits; LE is LT|EQ and GE is GT|EQ.
const (
	LT Flags = 1 << iota
	GT
	EQ
	LE = LT | EQ
	GE = GT | EQ
)

// ParseFlags reads the flags attribute of yum metadata ("EQ", "LT", "LE",
// "GT", "GE"; empty for an unversioned entry).
func ParseFlags(s string) (Flags, error) {
	switch s {
	case "":
		return 0, nil
	case "EQ":
		return EQ, nil
	case "LT":
		return LT, nil
	case "LE":
		return LE, nil
	case "GT":
		return GT, nil
	case "GE":
		return GE, nil
	}
	return 0, fmt.Errorf("unknown dependency flags %q (want EQ, LT, LE, GT or GE)", s)
}

// String returns the yum metadata spelling of f ("" when unversioned).
func (f Flags) String() string {
	switch f {
	case EQ:
		return "EQ"
	case LT:
		return "LT"
	case LE:
		return "LE"
	case GT:
		return "GT"
	case GE:
		return "GE"
	}
	return ""
}

// operator returns the spec-file spelling ("=", "<", "<=", ">", ">=").
func (f Flags) operator() string {
	switch f {
	case EQ:
		return "="
	case LT:
		return "<"
	case LE:
		return "<="
	case GT:
		return ">"
	case GE:
		return ">="
	}
	return "?"
}

// Dep is one capability: a Provides, Requires, Conflicts... entry.
type Dep struct {
	Name  string
	Flags Flags
	EVR   EVR
}

// String formats d as in a spec file: "name", or "name >= 1:2.0-1".
func (d Dep) String() string {
	if d.Flags == 0 {
		return d.Name
	}
	return d.Name + " " + d.Flags.operator() + " " + d.EVR.String()
}

// IsFile reports whether d names a file path ("/usr/bin/sh").
func (d Dep) IsFile() bool { return strings.HasPrefix(d.Name, "/") }

// IsRich reports whether d is a boolean ("rich") dependency such as
// "(foo or bar)".
func (d Dep) IsRich() bool { return strings.HasPrefix(d.Name, "(") }

// Satisfies reports whether the provide p satisfies the requirement r, as
// rpm's rpmdsCompare decides it: the names must be equal, and an
// unversioned side matches anything; otherwise the version ranges must
// overlap.
func (p Dep) Satisfies(r Dep) bool {
	if p.Name != r.Name {
		return false
	}
	if p.Flags == 0 || r.Flags == 0 || p.EVR.Version == "" && p.EVR.Epoch == "" || r.EVR.Version == "" && r.EVR.Epoch == "" {
		return true
	}
	return Overlap(p.EVR, p.Flags, r.EVR, r.Flags)
}

// Overlap reports whether the version ranges (a, fa) and (b, fb) intersect,
// following rpm's rpmverOverlap: an epoch missing on one side compares as
// older only when the other side's epoch is positive, and a release missing
// on one side matches any release when that side's range includes EQ.
func Overlap(a EVR, fa Flags, b EVR, fb Flags) bool {
	sense := 0
	switch {
	case a.Epoch != "" && b.Epoch != "":
		sense = Compare(a.Epoch, b.Epoch)
	case a.Epoch != "" && positive(a.Epoch):
		sense = 1
	case b.Epoch != "" && positive(b.Epoch):
		sense = -1
	}
	if sense == 0 {
		sense = Compare(a.Version, b.Version)
		if sense == 0 {
			if a.Release != "" && b.Release != "" {
				sense = Compare(a.Release, b.Release)
			} else if a.Release != "" && fb&EQ != 0 || b.Release != "" && fa&EQ != 0 {
				return true
			}
		}
	}
	switch {
	case sense < 0:
		return fa&GT != 0 || fb&LT != 0
	case sense > 0:
		return fa&LT != 0 || fb&GT != 0
	}
	return fa&EQ != 0 && fb&EQ != 0 || fa&LT != 0 && fb&LT != 0 || fa&GT != 0 && fb&GT != 0
}

// positive is atol(s) > 0 for a string of digits (leading digits only,
// like atol).
func positive(s string) bool {
	for i := 0; i < len(s) && isDigit(s[i]); i++ {
		if s[i] != '0' {
			return true
		}
	}
	return false
}
