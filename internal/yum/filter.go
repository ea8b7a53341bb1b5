package yum

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mirrord/mirrord/internal/textlist"
)

// selectPackages applies the filter (and, with filter_with_deps, the
// dependency closure) to the packages of primary.
func (r *run) selectPackages(ctx context.Context, pkgs []*pkg, data map[string]*dataFile) ([]*pkg, error) {
	patterns := r.s.opt.Filter
	var roots []*pkg
	if r.s.opt.FilterFrom != "" {
		nl, err := readNodeList(r.s.opt.FilterFrom)
		if err != nil {
			return nil, err
		}
		if roots, err = nl.roots(pkgs); err != nil {
			return nil, err
		}
	}
	if r.s.opt.Advisories != nil {
		adv, err := r.advisoryRoots(ctx, pkgs, data, patterns)
		if err != nil {
			return nil, err
		}
		roots, patterns = append(roots, adv...), nil // the filter narrowed the advisories' packages
	}
	if len(patterns) == 0 && roots == nil {
		return pkgs, nil // verbatim: false without a filter: everything, regenerated
	}
	res := newResolver(pkgs)
	withDeps := r.s.opt.FilterWithDeps || roots != nil
	if withDeps {
		if err := r.addFileProviders(ctx, res, pkgs, data["filelists"]); err != nil {
			return nil, err
		}
	}
	sel, unresolved, unmatched := closure(pkgs, patterns, roots, withDeps, res)
	if len(unmatched) > 0 {
		return nil, fmt.Errorf("%w: filter pattern %s matches no package of %s; check the name (patterns are shell globs on package names)", ErrFilterUnmatched, textlist.Quote(unmatched), r.s.up)
	}
	if len(unresolved) > 0 {
		r.log.Warn("dependencies of filtered packages no package in this repository provides (another repository must)",
			"count", len(unresolved), "missing", textlist.FirstN(unresolved, 20))
	}
	r.log.Info("filter applied", "patterns", patterns, "node_list", len(roots), "with_deps", withDeps, "selected", len(sel), "of", len(pkgs))
	if r.s.opt.FilterCheck {
		if err := r.check(ctx, sel, patterns, roots, data); err != nil {
			return nil, err
		}
	}
	return sel, nil
}

// ErrUninstallable marks a subset whose packages need what it lacks.
var ErrUninstallable = errors.New("the published subset cannot install what the filter asks for")

// check (filter_check) resolves the selection again from itself alone:
// every requirement of every package the filter asks for, transitively,
// must be met inside it.
func (r *run) check(ctx context.Context, sel []*pkg, patterns []string, roots []*pkg, data map[string]*dataFile) error {
	res := newResolver(sel)
	if err := r.addFileProviders(ctx, res, sel, data["filelists"]); err != nil {
		return err
	}
	_, unresolved, _ := closure(sel, patterns, roots, true, res)
	if len(unresolved) > 0 {
		return fmt.Errorf("%w: filter_check: %d requirements no package of the subset provides: %s", ErrUninstallable, len(unresolved), textlist.FirstN(unresolved, 20))
	}
	r.log.Info("filter_check: every requirement of the subset is met inside it", "packages", len(sel))
	return nil
}

// ErrFilterUnmatched marks a filter pattern that selects nothing.
var ErrFilterUnmatched = errors.New("filter matches nothing")

// addFileProviders answers, from filelists.xml, the file dependencies
// that primary's (partial) file lists leave open.
func (r *run) addFileProviders(ctx context.Context, res *resolver, pkgs []*pkg, fl *dataFile) error {
	missing := res.missingFiles(pkgs)
	if len(missing) == 0 || fl == nil {
		return nil
	}
	byID := map[string]*pkg{}
	for _, p := range pkgs {
		byID[p.Checksum.Hex] = p
	}
	return r.readData(ctx, fl, func(rd io.Reader) error {
		return parseFilelists(rd, func(pkgid, file string) {
			if missing[file] && byID[pkgid] != nil {
				res.addFile(file, byID[pkgid])
			}
		})
	})
}

// readData streams the decompressed content of a stored data file.
func (r *run) readData(ctx context.Context, df *dataFile, fn func(io.Reader) error) error {
	b, err := r.openBlob(ctx, df.info.Digest)
	if err != nil {
		return err
	}
	defer b.Close()
	rc, _, err := decompress(b, df.path)
	if err != nil {
		return badMetadata(df.what(), df.url, err)
	}
	defer rc.Close()
	if err := fn(rc); err != nil {
		return badMetadata(df.what(), df.url, err)
	}
	return nil
}

// parseFilelists calls fn for every <file> of every <package pkgid=...>.
func parseFilelists(rd io.Reader, fn func(pkgid, file string)) error {
	d := xml.NewDecoder(rd)
	var pkgid string
	var text strings.Builder
	inFile := false
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
			case "package":
				pkgid = attr(t, "pkgid")
			case "file":
				inFile = true
				text.Reset()
			}
		case xml.CharData:
			if inFile {
				text.Write(t)
			}
		case xml.EndElement:
			if t.Name.Local == "file" {
				inFile = false
				fn(pkgid, strings.TrimSpace(text.String()))
			}
		}
	}
}
