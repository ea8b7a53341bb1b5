package debver

import (
	"fmt"
	"strings"
)

// Op is a version relation operator.
type Op uint8

// Operators; OpNone means the relation has no version constraint.
const (
	OpNone Op = iota
	OpLess
	OpLessEq
	OpEq
	OpGreaterEq
	OpGreater
)

var opNames = [...]string{"", "<<", "<=", "=", ">=", ">>"}

func (o Op) String() string { return opNames[o] }

// parseOp accepts the five operators and the obsolete "<" and ">", which
// mean "<=" and ">=" (Policy §7.1).
func parseOp(s string) (Op, bool) {
	switch s {
	case "<<":
		return OpLess, true
	case "<=", "<":
		return OpLessEq, true
	case "=":
		return OpEq, true
	case ">=", ">":
		return OpGreaterEq, true
	case ">>":
		return OpGreater, true
	}
	return OpNone, false
}

// Relation is one possibility of a dependency: "name[:arch] [(op version)]
// [arch restrictions] [<profiles>]".
type Relation struct {
	Name string
	// ArchQual is the ":arch" qualifier: "", "any", "native" or an
	// architecture name.
	ArchQual string
	Op       Op
	Version  Version
	// Archs restricts the relation to (or, with a leading '!', away
	// from) architectures; only build dependencies use it.
	Archs []string
	// Profiles holds the raw build profile restriction formulas.
	Profiles []string
}

// String renders r in control-file syntax.
func (r Relation) String() string {
	var b strings.Builder
	b.WriteString(r.Name)
	if r.ArchQual != "" {
		b.WriteString(":" + r.ArchQual)
	}
	if r.Op != OpNone {
		fmt.Fprintf(&b, " (%s %s)", r.Op, r.Version)
	}
	if len(r.Archs) > 0 {
		b.WriteString(" [" + strings.Join(r.Archs, " ") + "]")
	}
	for _, p := range r.Profiles {
		b.WriteString(" <" + p + ">")
	}
	return b.String()
}

// SatisfiedBy reports whether version v meets r's version constraint.
func (r Relation) SatisfiedBy(v Version) bool {
	c := v.Compare(r.Version)
	switch r.Op {
	case OpNone:
		return true
	case OpLess:
		return c < 0
	case OpLessEq:
		return c <= 0
	case OpEq:
		return c == 0
	case OpGreaterEq:
		return c >= 0
	case OpGreater:
		return c > 0
	}
	return false
}

// AppliesTo reports whether r's architecture restriction list (if any)
// includes arch. "[amd64 i386]" applies to those two; "[!hurd-i386]" to
// everything else.
func (r Relation) AppliesTo(arch string) bool {
	if len(r.Archs) == 0 {
		return true
	}
	negated := strings.HasPrefix(r.Archs[0], "!")
	for _, a := range r.Archs {
		if strings.TrimPrefix(a, "!") == arch {
			return !negated
		}
	}
	return negated
}

// Alternatives is an OR group ("a | b (>= 2)"): any one satisfies it.
type Alternatives []Relation

// String renders the group in control-file syntax.
func (alt Alternatives) String() string {
	parts := make([]string, len(alt))
	for i, r := range alt {
		parts[i] = r.String()
	}
	return strings.Join(parts, " | ")
}

// ParseRelations parses a relation field (Depends, Pre-Depends,
// Recommends, Build-Depends, ...): comma-separated AND of '|'-separated
// alternatives. Whitespace, including folded lines, is insignificant.
// Empty entries between commas are ignored, as dpkg does for a trailing
// comma.
func ParseRelations(field string) ([]Alternatives, error) {
	var out []Alternatives
	for _, group := range strings.Split(field, ",") {
		if strings.TrimSpace(group) == "" {
			continue
		}
		var alt Alternatives
		for _, one := range strings.Split(group, "|") {
			r, err := ParseRelation(one)
			if err != nil {
				return nil, err
			}
			alt = append(alt, r)
		}
		out = append(out, alt)
	}
	return out, nil
}

// ParseProvides parses a Provides field: a comma-separated list of
// relations without alternatives whose only allowed operator is "=".
func ParseProvides(field string) ([]Relation, error) {
	groups, err := ParseRelations(field)
	if err != nil {
		return nil, err
	}
	out := make([]Relation, 0, len(groups))
	for _, g := range groups {
		if len(g) != 1 {
			return nil, fmt.Errorf("provides %q: %w: alternatives ('|') are not allowed", strings.TrimSpace(field), ErrInvalid)
		}
		if g[0].Op != OpNone && g[0].Op != OpEq {
			return nil, fmt.Errorf("provides %q: %w: only '=' may constrain a provided version", g[0], ErrInvalid)
		}
		out = append(out, g[0])
	}
	return out, nil
}

// ParseRelation parses one relation without alternatives.
func ParseRelation(s string) (Relation, error) {
	p := &relParser{src: s, s: s}
	r, err := p.relation()
	if err != nil {
		return Relation{}, fmt.Errorf("relation %q: %w", strings.TrimSpace(s), err)
	}
	return r, nil
}

// relParser is a small scanner over one relation.
type relParser struct {
	src string
	s   string
}

func (p *relParser) skipSpace() { p.s = strings.TrimLeft(p.s, " \t\r\n") }

func (p *relParser) relation() (Relation, error) {
	var r Relation
	p.skipSpace()
	r.Name = p.word(func(c byte) bool { return isAlpha(c) || isDigit(c) || strings.IndexByte("+-.", c) >= 0 })
	if r.Name == "" {
		return r, fmt.Errorf("%w: missing package name", ErrInvalid)
	}
	r.Name = strings.ToLower(r.Name)
	if p.s != "" && p.s[0] == ':' {
		p.s = p.s[1:]
		r.ArchQual = p.word(func(c byte) bool { return isAlpha(c) || isDigit(c) || c == '-' })
		if r.ArchQual == "" {
			return r, fmt.Errorf("%w: empty architecture qualifier after ':'", ErrInvalid)
		}
	}
	p.skipSpace()
	if err := p.versionPart(&r); err != nil {
		return r, err
	}
	if err := p.restrictions(&r); err != nil {
		return r, err
	}
	if p.skipSpace(); p.s != "" {
		return r, fmt.Errorf("%w: unexpected %q", ErrInvalid, p.s)
	}
	return r, nil
}

func (p *relParser) word(ok func(byte) bool) string {
	i := 0
	for i < len(p.s) && ok(p.s[i]) {
		i++
	}
	w := p.s[:i]
	p.s = p.s[i:]
	return w
}

// versionPart parses an optional "(op version)".
func (p *relParser) versionPart(r *Relation) error {
	if p.s == "" || p.s[0] != '(' {
		return nil
	}
	end := strings.IndexByte(p.s, ')')
	if end < 0 {
		return fmt.Errorf("%w: unclosed '('", ErrInvalid)
	}
	inner := strings.TrimSpace(p.s[1:end])
	p.s = p.s[end+1:]
	i := 0
	for i < len(inner) && strings.IndexByte("<=>", inner[i]) >= 0 {
		i++
	}
	op, ok := parseOp(inner[:i])
	if !ok {
		return fmt.Errorf("%w: bad operator %q (want <<, <=, =, >= or >>)", ErrInvalid, inner[:i])
	}
	v, err := Parse(inner[i:])
	if err != nil {
		return err
	}
	r.Op, r.Version = op, v
	return nil
}

// restrictions parses optional "[arch ...]" and "<profile ...>" lists.
func (p *relParser) restrictions(r *Relation) error {
	for p.skipSpace(); p.s != ""; p.skipSpace() {
		var closer byte
		switch p.s[0] {
		case '[':
			closer = ']'
		case '<':
			closer = '>'
		default:
			return nil
		}
		end := strings.IndexByte(p.s, closer)
		if end < 0 {
			return fmt.Errorf("%w: unclosed %q", ErrInvalid, p.s[0])
		}
		inner := strings.TrimSpace(p.s[1:end])
		p.s = p.s[end+1:]
		if closer == '>' {
			r.Profiles = append(r.Profiles, inner)
			continue
		}
		if err := parseArchList(r, inner); err != nil {
			return err
		}
	}
	return nil
}

func parseArchList(r *Relation, inner string) error {
	archs := strings.Fields(inner)
	if len(archs) == 0 {
		return fmt.Errorf("%w: empty architecture list", ErrInvalid)
	}
	neg := strings.HasPrefix(archs[0], "!")
	for _, a := range archs {
		if strings.HasPrefix(a, "!") != neg {
			return fmt.Errorf("%w: architecture list %q mixes negated and plain entries", ErrInvalid, inner)
		}
	}
	r.Archs = append(r.Archs, archs...)
	return nil
}
