package apt

import (
	"fmt"
	"path"
	"slices"
	"sort"
	"strings"
)

// indexKind is what an index file holds.
type indexKind int

const (
	kindPackages    indexKind = iota // binary-ARCH/Packages (debs)
	kindUdebs                        // debian-installer/binary-ARCH/Packages
	kindSources                      // source/Sources
	kindTranslation                  // i18n/Translation-LANG
	kindContents                     // Contents-ARCH
	kindDEP11                        // dep11/Components-ARCH.yml, icons-SIZE.tar, CID-Index-ARCH.json
)

// parsed reports whether mirrord reads the index (to find pool files and
// to filter it) rather than only passing it through.
func (k indexKind) parsed() bool { return k <= kindSources }

// variant is one listed form of an index (e.g. Packages.xz).
type variant struct {
	suffix string
	sum    fileSum
}

// index is one index file of a suite, in all the forms its Release lists.
type index struct {
	suite, comp, arch string
	kind              indexKind
	name              string    // path relative to dists/SUITE without suffix, e.g. "main/binary-amd64/Packages"
	variants          []variant // readable forms, best (smallest) first
	plain             *fileSum  // the uncompressed form, when listed
}

// path is the variant's path relative to dists/SUITE.
func (ix *index) path(suffix string) string { return ix.name + suffix }

// dir is the index's directory relative to dists/SUITE ("" at the top).
func (ix *index) dir() string {
	if d := path.Dir(ix.name); d != "." {
		return d
	}
	return ""
}

// best is the variant to download and read.
func (ix *index) best() variant { return ix.variants[0] }

// lookupIndex finds the forms of name listed in rel; nil when none is.
func lookupIndex(rel *release, name string) *index {
	ix := &index{name: name}
	for _, suf := range readSuffixes {
		if sum, ok := rel.files[name+suf]; ok {
			ix.variants = append(ix.variants, variant{suf, sum})
			if suf == "" {
				s := sum
				ix.plain = &s
			}
		}
	}
	if len(ix.variants) == 0 {
		return nil
	}
	sort.SliceStable(ix.variants, func(i, j int) bool { return ix.variants[i].sum.Size < ix.variants[j].sum.Size })
	return ix
}

// selection says which indices of a suite the config wants.
type selection struct {
	components    []string
	architectures []string
	sources       bool
	udebs         bool
	translations  []string
	contents      bool
	dep11         bool
}

// plan lists the indices of suite to mirror. A missing Packages or
// Sources index is an error naming what the upstream does carry; missing
// optional ones (udebs, translations, contents) are skipped.
func (sel selection) plan(suite string, rel *release) ([]*index, []string, error) {
	var out []*index
	var skipped []string
	add := func(name string, kind indexKind, comp, arch string, required bool) error {
		ix := lookupIndex(rel, name)
		if ix == nil {
			if required {
				return fmt.Errorf("the Release of suite %s lists no %s (in any compression mirrord reads): check components and architectures in the config; the upstream has %s", suite, name, available(rel))
			}
			skipped = append(skipped, name)
			return nil
		}
		ix.suite, ix.kind, ix.comp, ix.arch = suite, kind, comp, arch
		out = append(out, ix)
		return nil
	}
	for _, comp := range sel.components {
		if err := sel.planComponent(comp, rel, add); err != nil {
			return nil, nil, err
		}
	}
	if sel.contents {
		for _, arch := range sel.architectures {
			if !slices.ContainsFunc(out, func(ix *index) bool { return ix.kind == kindContents && ix.arch == arch }) {
				_ = add("Contents-"+arch, kindContents, "", arch, false)
			}
		}
	}
	return out, skipped, nil
}

func (sel selection) planComponent(comp string, rel *release, add func(string, indexKind, string, string, bool) error) error {
	archs := sel.architectures
	if rel.needsArchAll() && !slices.Contains(archs, "all") {
		archs = append(slices.Clone(archs), "all")
	}
	for _, arch := range archs {
		if err := add(comp+"/binary-"+arch+"/Packages", kindPackages, comp, arch, arch != "all"); err != nil {
			return err
		}
		if sel.udebs && arch != "all" {
			_ = add(comp+"/debian-installer/binary-"+arch+"/Packages", kindUdebs, comp, arch, false)
		}
		if sel.contents && arch != "all" {
			_ = add(comp+"/Contents-"+arch, kindContents, comp, arch, false)
			if sel.udebs {
				_ = add(comp+"/Contents-udeb-"+arch, kindContents, comp, arch, false)
			}
		}
	}
	if sel.sources {
		if err := add(comp+"/source/Sources", kindSources, comp, "source", true); err != nil {
			return err
		}
	}
	for _, lang := range sel.translations {
		_ = add(comp+"/i18n/Translation-"+lang, kindTranslation, comp, "", false)
	}
	if sel.dep11 {
		for _, name := range dep11Files(rel, comp, archs) {
			_ = add(name, kindDEP11, comp, "", false)
		}
	}
	return nil
}

// dep11Files lists the AppStream (DEP-11) files the Release lists for
// comp, without compression suffix: Components-ARCH.yml and
// CID-Index-ARCH.json for the configured architectures, and every
// icons-SIZE.tar. Sorted.
func dep11Files(rel *release, comp string, archs []string) []string {
	seen := map[string]bool{}
	prefix := comp + "/dep11/"
	for p := range rel.files {
		base, ok := strings.CutPrefix(p, prefix)
		if !ok || strings.Contains(base, "/") {
			continue
		}
		for _, suf := range readSuffixes {
			if suf != "" {
				base = strings.TrimSuffix(base, suf)
			}
		}
		keep := strings.HasPrefix(base, "icons-") && strings.HasSuffix(base, ".tar")
		for _, a := range archs {
			keep = keep || base == "Components-"+a+".yml" || base == "CID-Index-"+a+".json"
		}
		if keep {
			seen[prefix+base] = true
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// available summarises the Packages/Sources indices a Release lists, for
// error messages.
func available(rel *release) string {
	seen := map[string]bool{}
	for p := range rel.files {
		base := path.Base(p)
		if strings.HasPrefix(base, "Packages") || strings.HasPrefix(base, "Sources") {
			seen[path.Dir(p)] = true
		}
	}
	if len(seen) == 0 {
		return "no Packages or Sources indices at all"
	}
	dirs := make([]string, 0, len(seen))
	for d := range seen {
		dirs = append(dirs, d)
	}
	sort.Strings(dirs)
	if len(dirs) > 12 {
		dirs = append(dirs[:12], fmt.Sprintf("and %d more", len(dirs)-12))
	}
	return strings.Join(dirs, ", ")
}
