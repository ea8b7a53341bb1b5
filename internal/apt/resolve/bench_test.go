package resolve

import (
	"fmt"
	"testing"
)

// The shape of bench/apt.sh's filtered subset: 5,000 packages, each
// depending on the one at half its number and on an absent libc6.
func BenchmarkInstallEachRoot(b *testing.B) {
	var pkgs []*Package
	for i := range 5000 {
		p := &Package{Name: fmt.Sprintf("bench-pkg-%05d", i), Version: "1.0-1", Arch: "amd64", Priority: "optional"}
		if i > 0 {
			p.Depends = fmt.Sprintf("bench-pkg-%05d (>= 1.0), libc6 (>= 2.36) | libc6.1", i/2)
		}
		pkgs = append(pkgs, p)
	}
	for b.Loop() {
		u := New(pkgs, []string{"amd64"}, nil)
		for i := 4000; i < 5000; i++ {
			if _, err := u.Install([]Request{{Name: fmt.Sprintf("bench-pkg-%05d", i)}}, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// Worse than Debian: 20,000 packages with five dependencies each (one an
// OR group, one a virtual package, one a chain through thousands of
// packages), installing benchRoots roots one at a time.
func BenchmarkInstallLargeClosures(b *testing.B) {
	const n = 20000
	var pkgs []*Package
	for i := range n {
		p := &Package{Name: fmt.Sprintf("p%05d", i), Version: "1.0-1", Arch: "amd64", Priority: "optional"}
		if i >= 10 {
			p.Depends = fmt.Sprintf("p%05d, p%05d (>= 1.0), ghost%d | p%05d, virt%d, p%05d", i/2, i/3, i%7, i/5, i%50, i-7)
			p.Breaks = fmt.Sprintf("p%05d (<< 0.5)", i/11)
		}
		if i < 500 {
			p.Provides = fmt.Sprintf("virt%d", i%50)
		}
		pkgs = append(pkgs, p)
	}
	u := New(pkgs, []string{"amd64"}, nil)
	for b.Loop() {
		for i := n - benchRoots; i < n; i++ {
			if _, err := u.Install([]Request{{Name: fmt.Sprintf("p%05d", i)}}, Options{}); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// benchRoots is how many roots BenchmarkInstallLargeClosures installs.
const benchRoots = 20
