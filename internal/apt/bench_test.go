package apt

import (
	"bytes"
	"fmt"
	"testing"
)

// synthPackages returns n Packages stanzas shaped like Debian's (about
// 700 bytes each, with relations and a multi-line description).
func synthPackages(n int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, "Package: pkg%d\nSource: src%d (1.%d-1)\nVersion: 1:%d.%d~rc1-1+b1\nInstalled-Size: %d\n", i, i/3, i%7, i%50, i%13, 100+i%9000)
		fmt.Fprintf(&b, "Maintainer: Some Maintainer <maint%d@example.org>\nArchitecture: amd64\nMulti-Arch: foreign\n", i%300)
		fmt.Fprintf(&b, "Depends: libc6 (>= 2.34), libfoo%d (>= 1.%d), bar | baz (<< 3), python3:any\nRecommends: pkg%d\n", i%100, i%10, (i+1)%n)
		fmt.Fprintf(&b, "Description: synthetic package %d for parser benchmarks\n This package exists only to be parsed.\n .\n It has a long\n description like real ones.\n", i)
		fmt.Fprintf(&b, "Homepage: https://example.org/pkg%d\nDescription-md5: %032x\nTag: devel::lang:c, role::program\nSection: misc\nPriority: optional\n", i, i)
		fmt.Fprintf(&b, "Filename: pool/main/p/pkg%d/pkg%d_%d.%d~rc1-1+b1_amd64.deb\nSize: %d\nMD5sum: %032x\nSHA256: %064x\n\n", i, i, i%50, i%13, 1000+i, i, i)
	}
	return b.Bytes()
}

// BenchmarkParsePackages measures streaming a Packages index through the
// stanza reader into the records a sync keeps (65,000 stanzas, about the
// size of Debian main amd64).
func BenchmarkParsePackages(b *testing.B) {
	for _, deps := range []bool{false, true} {
		b.Run(fmt.Sprintf("keepRelations=%v", deps), func(b *testing.B) {
			data := synthPackages(65000)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				p := newParagraphs(bytes.NewReader(data))
				bp := &binParser{keepRelations: deps, strs: map[string]string{}}
				n := 0
				for ord := 0; ; ord++ {
					ok, err := p.next()
					if err != nil {
						b.Fatal(err)
					}
					if !ok {
						break
					}
					if _, err := bp.parse(p, ord); err != nil {
						b.Fatal(err)
					}
					n++
				}
				if n != 65000 {
					b.Fatalf("parsed %d stanzas", n)
				}
			}
		})
	}
}

func TestSynthPackagesParse(t *testing.T) {
	data := synthPackages(3)
	p := newParagraphs(bytes.NewReader(data))
	bp := &binParser{keepRelations: true, strs: map[string]string{}}
	ok, err := p.next()
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	pkg, err := bp.parse(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if pkg.Name != "pkg0" || pkg.Source != "src0" || pkg.Version != "1:0.0~rc1-1+b1" || !pkg.verOK || pkg.MA.String() != "foreign" ||
		pkg.File.Size != 1000 || pkg.Depends == "" || pkg.Recommends != "pkg1" {
		t.Errorf("parsed %+v", pkg)
	}
}
