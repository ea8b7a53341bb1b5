package apttest

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Package describes one binary package to build.
type Package struct {
	Name    string
	Version string
	Arch    string // default "amd64"
	// Relation fields, in control-file syntax; empty ones are left out.
	Depends, PreDepends, Recommends, Suggests, Provides, Conflicts, Breaks string
	MultiArch                                                              string
	Priority                                                               string // default "optional"
	Source                                                                 string // default Name
	Component                                                              string // default the repo's first component
	Suite                                                                  string // default the repo's first suite
	// Udeb makes a debian-installer package (NAME_VER_ARCH.udeb, listed in
	// COMP/debian-installer/binary-ARCH/Packages).
	Udeb bool
	// Payload is installed as /usr/share/doc/NAME/payload; it makes the
	// .deb as large as wanted. Default: "NAME VERSION\n".
	Payload []byte
}

// Deb is a built package file in a repository.
type Deb struct {
	Package
	Filename string // path relative to the repository root
	SHA256   string
	Size     int64
	Data     []byte
}

func (p *Package) defaults(r *Repo) {
	if p.Arch == "" {
		p.Arch = "amd64"
	}
	if p.Source == "" {
		p.Source = p.Name
	}
	if p.Component == "" {
		p.Component = r.opt.Components[0]
	}
	if p.Suite == "" {
		p.Suite = r.opt.Suites[0]
	}
	if p.Payload == nil {
		p.Payload = []byte(p.Name + " " + p.Version + "\n")
	}
}

// poolPath is Debian's pool layout: pool/COMP/PREFIX/SOURCE/NAME_VER_ARCH.deb
// (the version without its epoch).
func (p *Package) poolPath() string {
	prefix := p.Source[:1]
	if strings.HasPrefix(p.Source, "lib") && len(p.Source) > 3 {
		prefix = p.Source[:4]
	}
	ver := p.Version
	if i := strings.IndexByte(ver, ':'); i >= 0 {
		ver = ver[i+1:]
	}
	ext := ".deb"
	if p.Udeb {
		ext = ".udeb"
	}
	return fmt.Sprintf("pool/%s/%s/%s/%s_%s_%s%s", p.Component, prefix, p.Source, p.Name, ver, p.Arch, ext)
}

func (p *Package) control() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: %s\n", p.Name, p.Version, p.Arch)
	fmt.Fprintf(&b, "Maintainer: apttest <apttest@example.invalid>\n")
	if p.Source != p.Name {
		fmt.Fprintf(&b, "Source: %s\n", p.Source)
	}
	for _, f := range [][2]string{
		{"Multi-Arch", p.MultiArch}, {"Pre-Depends", p.PreDepends}, {"Depends", p.Depends},
		{"Recommends", p.Recommends}, {"Suggests", p.Suggests}, {"Conflicts", p.Conflicts}, {"Breaks", p.Breaks}, {"Provides", p.Provides},
	} {
		if f[1] != "" {
			fmt.Fprintf(&b, "%s: %s\n", f[0], f[1])
		}
	}
	prio := p.Priority
	if prio == "" {
		prio = "optional"
	}
	fmt.Fprintf(&b, "Section: misc\nPriority: %s\nDescription: apttest fixture %s\n built by dpkg-deb for mirrord's tests.\n", prio, p.Name)
	return b.String()
}

// DebCache remembers built .debs by their control data and payload, so
// tests that build the same packages run dpkg-deb once. Safe for
// concurrent use.
type DebCache struct {
	mu   sync.Mutex
	debs map[string][]byte
}

// NewDebCache returns an empty cache.
func NewDebCache() *DebCache { return &DebCache{debs: map[string][]byte{}} }

// build makes the .deb with dpkg-deb (or takes it from cache) into the
// repository's pool.
func (p *Package) build(t testing.TB, root string, cache *DebCache) Deb {
	t.Helper()
	key := p.control() + "\x00" + string(p.Payload)
	var data []byte
	if cache != nil {
		cache.mu.Lock()
		data = cache.debs[key]
		cache.mu.Unlock()
	}
	if data == nil {
		data = p.dpkgDeb(t)
		if cache != nil {
			cache.mu.Lock()
			cache.debs[key] = data
			cache.mu.Unlock()
		}
	}
	writeFile(t, filepath.Join(root, p.poolPath()), data)
	sum := sha256.Sum256(data)
	return Deb{Package: *p, Filename: p.poolPath(), SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)), Data: bytes.Clone(data)}
}

// dpkgDeb runs dpkg-deb --build and returns the package file.
func (p *Package) dpkgDeb(t testing.TB) []byte {
	t.Helper()
	work := t.TempDir()
	writeFile(t, filepath.Join(work, "pkg", "DEBIAN", "control"), []byte(p.control()))
	writeFile(t, filepath.Join(work, "pkg", "usr", "share", "doc", p.Name, "payload"), p.Payload)
	out := filepath.Join(work, "out.deb")
	run(t, "", []string{"SOURCE_DATE_EPOCH=1700000000"}, "dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "--build", filepath.Join(work, "pkg"), out)
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func md5Sum(b []byte) [16]byte { return md5.Sum(b) }
