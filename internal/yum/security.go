package yum

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
)

// Advisories selects packages by the advisories (updateinfo.xml) that
// ship them: a security-only subset is Types [security].
type Advisories struct {
	Types      []string // security, bugfix, enhancement, newpackage
	Severities []string // e.g. Critical, Important; empty: any
}

// matches reports whether an advisory of typ and severity is selected
// (case-insensitively).
func (a *Advisories) matches(typ, severity string) bool {
	eq := func(list []string, s string) bool {
		return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
	}
	return eq(a.Types, typ) && (len(a.Severities) == 0 || eq(a.Severities, severity))
}

// ErrNoAdvisories marks an advisories filter the upstream cannot answer.
var ErrNoAdvisories = errors.New("no advisory matches")

// advisoryRoots returns the packages of pkgs that a selected advisory
// ships (and, with patterns, whose name matches one of them).
func (r *run) advisoryRoots(ctx context.Context, pkgs []*pkg, data map[string]*dataFile, patterns []string) ([]*pkg, error) {
	adv := r.s.opt.Advisories
	df := data["updateinfo"]
	if df == nil {
		return nil, fmt.Errorf("%w: advisories is set, but %s has no updateinfo metadata (repomd.xml lists none)", ErrNoAdvisories, r.s.up)
	}
	want := map[string]bool{}
	n := 0
	err := r.readData(ctx, df, func(rd io.Reader) error {
		return parseAdvisories(rd, func(typ, severity string, nevras []string) {
			if adv.matches(typ, severity) {
				n++
				for _, k := range nevras {
					want[k] = true
				}
			}
		})
	})
	if err != nil {
		return nil, err
	}
	var roots []*pkg
	for _, p := range pkgs {
		if !want[nevraKey(p.Name, p.EVR.Epoch, p.EVR.Version, p.EVR.Release, p.Arch)] {
			continue
		}
		if len(patterns) > 0 && !slices.ContainsFunc(patterns, func(pat string) bool { ok, _ := path.Match(pat, p.Name); return ok }) {
			continue
		}
		roots = append(roots, p)
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("%w: %d advisories of types %v and severities %v, shipping none of this repository's packages%s; check the advisories setting",
			ErrNoAdvisories, n, adv.Types, adv.Severities, map[bool]string{true: " matched by filter", false: ""}[len(patterns) > 0])
	}
	r.log.Info("advisories select packages", "advisories", n, "packages", len(roots))
	return roots, nil
}

// parseAdvisories calls fn for every <update>: its type, severity and
// the packages it lists (as nevraKey).
func parseAdvisories(rd io.Reader, fn func(typ, severity string, nevras []string)) error {
	d := xml.NewDecoder(rd)
	var typ, severity string
	var nevras []string
	var text strings.Builder
	inSeverity := false
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			line, _ := d.InputPos()
			return fmt.Errorf("line %d: %w", line, err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "update":
				typ, severity, nevras = attr(t, "type"), "", nil
			case "severity":
				inSeverity = true
				text.Reset()
			case "package":
				nevras = append(nevras, nevraKey(attr(t, "name"), attr(t, "epoch"), attr(t, "version"), attr(t, "release"), attr(t, "arch")))
			}
		case xml.CharData:
			if inSeverity {
				text.Write(t)
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "severity":
				inSeverity = false
				severity = strings.TrimSpace(text.String())
			case "update":
				fn(typ, severity, nevras)
			}
		}
	}
}

// advisoryKept reports whether the <update> element toks passes adv
// (nil keeps every advisory).
func advisoryKept(toks []xml.Token, adv *Advisories) bool {
	if adv == nil {
		return true
	}
	start := toks[0].(xml.StartElement)
	severity := ""
	for i, t := range toks {
		if s, ok := t.(xml.StartElement); ok && s.Name.Local == "severity" && i+1 < len(toks) {
			if cd, ok := toks[i+1].(xml.CharData); ok {
				severity = strings.TrimSpace(string(cd))
			}
		}
	}
	return adv.matches(attr(start, "type"), severity)
}
