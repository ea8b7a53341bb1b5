package apt

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func TestParagraphs(t *testing.T) {
	in := "\n\n# a comment\nPackage: a\nDescription: short\n long line one\n .\n long line two  \nVersion: 1\r\n\n \t\nPackage: b\nversion: 2"
	p := newParagraphs(strings.NewReader(in))
	var got []string
	for {
		ok, err := p.next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		var fields []string
		p.each(func(n, v []byte) { fields = append(fields, fmt.Sprintf("%s=%q", n, v)) })
		ver, _ := p.get("VERSION")
		got = append(got, fmt.Sprintf("@%d %s ver=%s raw=%q", p.start, strings.Join(fields, " "), ver, p.raw()))
	}
	want := []string{
		`@4 Package="a" Description="short\n long line one\n .\n long line two" Version="1" ver=1 raw="Package: a\nDescription: short\n long line one\n .\n long line two  \nVersion: 1\r\n"`,
		`@12 Package="b" version="2" ver=2 raw="Package: b\nversion: 2\n"`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestParagraphErrors(t *testing.T) {
	for _, in := range []string{" continuation first\n", "Package: a\nno colon here\n", ": empty name\n"} {
		p := newParagraphs(strings.NewReader(in))
		if _, err := p.next(); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("%q: err = %v, want a line-numbered error", in, err)
		}
	}
	huge := "Package: a\nDescription: " + strings.Repeat("x", maxParagraph) + "\n"
	if _, err := newParagraphs(strings.NewReader(huge)).next(); err == nil {
		t.Error("a paragraph over the cap was accepted")
	}
}

// The generated Release, against a golden file (go test -update rewrites it).
func TestReleaseGolden(t *testing.T) {
	up, err := parseRelease([]byte(`Origin: Debian
Label: Debian
Suite: stable
Version: 12.8
Codename: bookworm
Changelogs: https://metadata.example/changelogs/@CHANGEPATH@_changelog
Date: Sat, 09 Nov 2024 10:05:33 UTC
Valid-Until: Sat, 16 Nov 2024 10:05:33 UTC
Acquire-By-Hash: yes
No-Support-for-Architecture-all: Packages
Architectures: all amd64 arm64 i386
Components: main contrib non-free-firmware non-free
Description: Debian 12.8 Released 09 November 2024
Signed-By: 4D64FEC119C2029067D6E791F8D2585B8783D481
MD5Sum:
 0ed6d4c8891eb86358b94bb35d9e4da4  1484322 contrib/Contents-all
SHA256:
 d6c9c82f4e61b4662f9ba16b9ebb379c57b4943f8b7813091d1f637325ddfb79  1484322 contrib/Contents-all
`))
	if err != nil {
		t.Fatal(err)
	}
	got := up.publish(releaseSpec{
		Architectures: []string{"amd64"},
		Components:    []string{"main"},
		Snapshots:     "http://mirror.example:8080/snapshots/@SNAPSHOTID@/apt/debian/",
		Files: map[string]fileSum{
			"main/binary-amd64/Packages.xz": {Size: 9000000, SHA256: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
			"main/binary-amd64/Packages.gz": {Size: 12000000, SHA256: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
			"main/binary-amd64/Packages":    {Size: 45000000, SHA256: "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"},
		},
	})
	golden := filepath.Join("testdata", "release.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("Release differs from %s (run go test -update to accept):\n%s", golden, got)
	}
	for _, banned := range []string{"Valid-Until", "Signed-By", "MD5Sum", "Contents-all"} {
		if bytes.Contains(got, []byte(banned)) {
			t.Errorf("published Release carries %s", banned)
		}
	}
}
