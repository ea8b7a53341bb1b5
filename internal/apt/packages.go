package apt

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/mirrord/mirrord/internal/debver"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// poolFile is one file an index points into the pool.
type poolFile struct {
	Path   string
	Size   int64
	SHA256 store.Digest
}

// binPkg is what mirrord keeps of one Packages stanza.
type binPkg struct {
	Name, Version, Arch string
	ver                 debver.Version
	verOK               bool
	MA                  debver.MultiArch
	Source              string // source package name (Source field without version)
	File                poolFile
	// Relation fields (and what apt ranks providers by), kept only when
	// dependencies are followed.
	PreDepends, Depends, Recommends, Provides, Conflicts, Breaks string
	Priority, Essential, Important                               string
	ord                                                          int    // stanza number within its index
	suite, idxArch                                               string // where the stanza was listed
}

// key identifies a package version in a suite: selecting it selects every
// stanza of it (an arch-all package is listed once per architecture).
func (p *binPkg) key() string {
	return p.suite + "\x00" + p.Name + "\x00" + p.Version + "\x00" + p.Arch
}

// item is the package's entry for snapshot diffs.
func (p *binPkg) item() snapshot.Item {
	name := p.Name
	if p.Arch != "all" {
		name += ":" + p.Arch
	}
	return snapshot.Item{Name: name, Version: p.Version}
}

// srcPkg is what mirrord keeps of one Sources stanza.
type srcPkg struct {
	Name, Version string
	Files         []poolFile
	ord           int
}

// interned returns a shared copy of common short values (architectures),
// so 65,000 stanzas do not hold 65,000 copies of "amd64".
func interned(b []byte, table map[string]string) string {
	if s, ok := table[string(b)]; ok {
		return s
	}
	s := string(b)
	table[s] = s
	return s
}

// binParser turns Packages stanzas into binPkgs.
type binParser struct {
	keepRelations bool
	strs          map[string]string
}

func (bp *binParser) parse(p *paragraphs, ord int) (binPkg, error) {
	pkg := binPkg{ord: ord}
	var size, sum, ma []byte
	p.each(func(name, value []byte) {
		switch {
		case eq(name, "Package"):
			pkg.Name = string(value)
		case eq(name, "Version"):
			pkg.Version = string(value)
		case eq(name, "Architecture"):
			pkg.Arch = interned(value, bp.strs)
		case eq(name, "Filename"):
			pkg.File.Path = string(value)
		case eq(name, "Size"):
			size = value
		case eq(name, "SHA256"):
			sum = value
		case eq(name, "Multi-Arch"):
			ma = value
		case eq(name, "Source"):
			pkg.Source = sourceName(value)
		case bp.keepRelations:
			bp.relation(&pkg, name, value)
		}
	})
	if err := pkg.check(size, sum, ma); err != nil {
		return pkg, err
	}
	if pkg.Source == "" {
		pkg.Source = pkg.Name
	}
	return pkg, nil
}

func (bp *binParser) relation(pkg *binPkg, name, value []byte) {
	switch {
	case eq(name, "Pre-Depends"):
		pkg.PreDepends = string(value)
	case eq(name, "Depends"):
		pkg.Depends = string(value)
	case eq(name, "Recommends"):
		pkg.Recommends = string(value)
	case eq(name, "Provides"):
		pkg.Provides = string(value)
	case eq(name, "Conflicts"):
		pkg.Conflicts = string(value)
	case eq(name, "Breaks"):
		pkg.Breaks = string(value)
	case eq(name, "Priority"):
		pkg.Priority = interned(value, bp.strs)
	case eq(name, "Essential"):
		pkg.Essential = interned(value, bp.strs)
	case eq(name, "Important"):
		pkg.Important = interned(value, bp.strs)
	}
}

// check validates the fields mirrord relies on.
func (pkg *binPkg) check(size, sum, ma []byte) error {
	switch {
	case pkg.Name == "":
		return fmt.Errorf("stanza without a Package field")
	case pkg.Version == "" || pkg.Arch == "" || pkg.File.Path == "":
		return fmt.Errorf("package %s: missing Version, Architecture or Filename", pkg.Name)
	case sum == nil:
		return fmt.Errorf("package %s %s: no SHA256 field; mirrord requires SHA256 checksums for pool files", pkg.Name, pkg.Version)
	}
	var err error
	if pkg.File.Size, err = strconv.ParseInt(string(size), 10, 64); err != nil || pkg.File.Size < 0 {
		return fmt.Errorf("package %s %s: bad Size %q", pkg.Name, pkg.Version, size)
	}
	if pkg.File.SHA256, err = store.ParseDigest(strings.ToLower(string(sum))); err != nil {
		return fmt.Errorf("package %s %s: bad SHA256: %w", pkg.Name, pkg.Version, err)
	}
	if err := checkPoolPath(pkg.File.Path); err != nil {
		return fmt.Errorf("package %s %s: %w", pkg.Name, pkg.Version, err)
	}
	pkg.ver, err = debver.Parse(pkg.Version)
	pkg.verOK = err == nil
	pkg.MA, _ = debver.ParseMultiArch(string(ma))
	return nil
}

// checkPoolPath refuses a Filename that would escape the repository or
// land on top of the metadata mirrord publishes.
func checkPoolPath(p string) error {
	if _, err := snapshot.CleanPath(p); err != nil {
		return fmt.Errorf("the Filename %q is not a safe relative path inside the repository (%v); the upstream index is malformed or malicious", p, err)
	}
	if p == "dists" || strings.HasPrefix(p, "dists/") {
		return fmt.Errorf("the Filename %q points into dists/, where only indices live; the upstream index is malformed or malicious", p)
	}
	return nil
}

// sourceName strips the "(version)" of a Source field.
func sourceName(v []byte) string {
	if i := bytes.IndexByte(v, ' '); i >= 0 {
		v = v[:i]
	}
	return string(v)
}

// eq compares a field name with want, ignoring ASCII case, without
// allocating (it runs for every field of every stanza).
func eq(name []byte, want string) bool {
	if len(name) != len(want) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if lower(name[i]) != lower(want[i]) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// parseSource turns a Sources stanza into a srcPkg.
func parseSource(p *paragraphs, ord int) (srcPkg, error) {
	sp := srcPkg{ord: ord}
	var dir, sums []byte
	p.each(func(name, value []byte) {
		switch {
		case eq(name, "Package"):
			sp.Name = string(value)
		case eq(name, "Version"):
			sp.Version = string(value)
		case eq(name, "Directory"):
			dir = value
		case eq(name, "Checksums-Sha256"):
			sums = value
		}
	})
	if sp.Name == "" || sp.Version == "" || dir == nil {
		return sp, fmt.Errorf("source stanza %q: missing Package, Version or Directory", sp.Name)
	}
	if sums == nil {
		return sp, fmt.Errorf("source %s %s: no Checksums-Sha256 field; mirrord requires SHA256 checksums", sp.Name, sp.Version)
	}
	for _, line := range strings.Split(string(sums), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) != 3 {
			return sp, fmt.Errorf("source %s %s: Checksums-Sha256 line %q: want \"sha256 size name\"", sp.Name, sp.Version, line)
		}
		pf, err := sourceFile(string(dir), f)
		if err != nil {
			return sp, fmt.Errorf("source %s %s: %w", sp.Name, sp.Version, err)
		}
		sp.Files = append(sp.Files, pf)
	}
	return sp, nil
}

func sourceFile(dir string, f []string) (poolFile, error) {
	d, err := store.ParseDigest(strings.ToLower(f[0]))
	if err != nil {
		return poolFile{}, err
	}
	size, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || size < 0 {
		return poolFile{}, fmt.Errorf("bad size %q for %s", f[1], f[2])
	}
	if strings.Contains(f[2], "/") {
		return poolFile{}, fmt.Errorf("file name %q contains a slash", f[2])
	}
	p := dir + "/" + f[2]
	if err := checkPoolPath(p); err != nil {
		return poolFile{}, err
	}
	return poolFile{Path: p, Size: size, SHA256: d}, nil
}
