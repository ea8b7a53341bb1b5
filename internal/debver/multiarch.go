package debver

import (
	"fmt"
	"strings"
)

// MultiArch is a binary package's Multi-Arch field.
type MultiArch uint8

// Multi-Arch values; MANo is the default when the field is absent.
const (
	MANo MultiArch = iota
	MASame
	MAForeign
	MAAllowed
)

var maNames = [...]string{"no", "same", "foreign", "allowed"}

func (m MultiArch) String() string { return maNames[m] }

// ParseMultiArch parses a Multi-Arch field; empty means "no".
func ParseMultiArch(s string) (MultiArch, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "no":
		return MANo, nil
	case "same":
		return MASame, nil
	case "foreign":
		return MAForeign, nil
	case "allowed":
		return MAAllowed, nil
	}
	return MANo, fmt.Errorf("multi-arch %q: %w: want no, same, foreign or allowed", s, ErrInvalid)
}

// ArchMatches reports whether a package of architecture candArch with
// Multi-Arch ma can satisfy r when r is declared by a package built for
// fromArch (for an "all" package, pass the architecture it is installed
// for). It follows the Multi-Arch specification, leaning permissive where
// dpkg and apt differ (for ":any" apt also accepts a same-architecture
// or Multi-Arch: foreign package), because a mirror's dependency closure
// should rather hold a package too many than one too few:
//
//   - unqualified (or ":native"): same architecture, "all", or
//     Multi-Arch: foreign of any architecture;
//   - ":any": Multi-Arch: allowed or foreign of any architecture, or the
//     same architecture;
//   - ":ARCH": exactly that architecture.
func ArchMatches(r Relation, fromArch, candArch string, ma MultiArch) bool {
	sameArch := candArch == fromArch || candArch == "all"
	switch r.ArchQual {
	case "", "native":
		return sameArch || ma == MAForeign
	case "any":
		return sameArch || ma == MAForeign || ma == MAAllowed
	}
	return candArch == r.ArchQual
}
