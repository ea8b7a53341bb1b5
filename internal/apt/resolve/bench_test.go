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
