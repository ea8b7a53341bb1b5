package yum

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/fuzzguard"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// Fuzz targets for every metadata file mirrord parses or rewrites. `go
// test` replays testdata/fuzz/FuzzXxx and the f.Add seeds; `make fuzz`
// explores.

const fuzzSum = "0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"

const fuzzRepomd = `<?xml version="1.0" encoding="UTF-8"?>
<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">
  <revision>1700000000</revision>
  <data type="primary">
    <checksum type="sha256">` + fuzzSum + `</checksum>
    <open-checksum type="sha256">` + fuzzSum + `</open-checksum>
    <location href="repodata/` + fuzzSum + `-primary.xml.gz"/>
    <timestamp>1700000000</timestamp>
    <size>1234</size>
    <open-size>5678</open-size>
  </data>
  <data type="filelists_zck">
    <checksum type="sha1">0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d</checksum>
    <header-checksum type="sha256">` + fuzzSum + `</header-checksum>
    <location xml:base="http://upstream.invalid/repo/" href="repodata/filelists.xml.zck"/>
    <header-size>100</header-size>
  </data>
</repomd>
`

const fuzzPrimary = `<?xml version="1.0" encoding="UTF-8"?>
<metadata xmlns="http://linux.duke.edu/metadata/common" xmlns:rpm="http://linux.duke.edu/metadata/rpm" packages="1">
<package type="rpm">
  <name>hello</name>
  <arch>x86_64</arch>
  <version epoch="1" ver="2.10" rel="3.el9"/>
  <checksum type="sha256" pkgid="YES">` + fuzzSum + `</checksum>
  <summary>hi &amp; bye</summary>
  <size package="1000" installed="2000" archive="3000"/>
  <location href="Packages/h/hello-2.10-3.el9.x86_64.rpm"/>
  <format>
    <rpm:provides><rpm:entry name="hello" flags="EQ" epoch="1" ver="2.10" rel="3.el9"/></rpm:provides>
    <rpm:requires><rpm:entry name="libc.so.6()(64bit)"/><rpm:entry name="(a or b)"/></rpm:requires>
    <file>/usr/bin/hello</file>
  </format>
</package>
</metadata>
`

const fuzzFilelists = `<?xml version="1.0" encoding="UTF-8"?>
<filelists xmlns="http://linux.duke.edu/metadata/filelists" packages="2">
<package pkgid="` + fuzzSum + `" name="hello" arch="x86_64"><version epoch="0" ver="1" rel="1"/><file>/usr/bin/hello</file><file type="dir">/usr/share/hello</file></package>
<package pkgid="other" name="other" arch="noarch"><version epoch="0" ver="1" rel="1"/></package>
</filelists>
`

const fuzzUpdateinfo = `<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="security@example" status="stable" type="security" version="2">
    <id>EX-2023:1</id><title>hello fix</title>
    <references><reference href="https://example.invalid/1" id="1" type="cve"/></references>
    <pkglist>
      <collection short="c"><name>c</name>
        <package name="hello" version="2.10" release="3.el9" epoch="1" arch="x86_64"><filename>hello.rpm</filename></package>
      </collection>
      <collection short="d"><package name="gone" version="1" release="1" epoch="0" arch="noarch"/></collection>
    </pkglist>
  </update>
  <update><id>EX-2023:2</id><pkglist><collection><package name="gone" version="1" release="1" epoch="0" arch="noarch"/></collection></pkglist></update>
</updates>
`

func fuzzUpstream(t *testing.T) upstream {
	u, err := parseUpstream("http://upstream.invalid/repo/")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// FuzzRepomd: an accepted repomd.xml re-encodes to one that parses to the
// same entries, and every location either resolves inside the tree or is
// refused with ErrUnsafeLocation.
func FuzzRepomd(f *testing.F) {
	f.Add([]byte(fuzzRepomd))
	f.Add([]byte(strings.Replace(fuzzRepomd, `href="repodata/`, `href="../../`, 1)))
	f.Add([]byte(`<!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><repomd>&b;</repomd>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Arm()()
		md, err := parseRepomd(data)
		if err != nil {
			if !errors.Is(err, ErrBadMetadata) {
				t.Fatalf("error does not wrap ErrBadMetadata: %v", err)
			}
			return
		}
		back, err := parseRepomd(md.encode())
		if err != nil {
			t.Fatalf("re-encoded repomd.xml does not parse: %v\n%s", err, md.encode())
		}
		if len(back.Data) != len(md.Data) {
			t.Fatalf("re-encoded %d entries, parsed %d", len(md.Data), len(back.Data))
		}
		for i := range md.Data {
			a, b := md.Data[i], back.Data[i]
			if a.Type != b.Type || a.Href != b.Href || a.Checksum != b.Checksum || a.Size != b.Size || a.OpenSize != b.OpenSize {
				t.Fatalf("entry %d: %+v re-parsed as %+v", i, a, b)
			}
		}
		u := fuzzUpstream(t)
		for _, e := range md.Data {
			checkFuzzLocation(t, u, e.Href, e.Base)
		}
	})
}

func checkFuzzLocation(t *testing.T, u upstream, href, base string) {
	t.Helper()
	rel, fetchURL, err := u.locate(href, base)
	if err != nil {
		if !errors.Is(err, ErrUnsafeLocation) {
			t.Fatalf("locate(%q, %q): error does not wrap ErrUnsafeLocation: %v", href, base, err)
		}
		return
	}
	if _, err := snapshot.CleanPath(rel); err != nil {
		t.Fatalf("locate(%q, %q) = %q: %v", href, base, rel, err)
	}
	if !strings.HasPrefix(fetchURL, u.String()) {
		t.Fatalf("locate(%q, %q) fetches %q, off the upstream %s", href, base, fetchURL, u)
	}
}

// FuzzPrimary: every package primary.xml yields is complete, and its
// location resolves inside the tree or is refused.
func FuzzPrimary(f *testing.F) {
	f.Add([]byte(fuzzPrimary))
	f.Add([]byte(strings.Replace(fuzzPrimary, `href="Packages/`, `href="/etc/`, 1)))
	f.Add([]byte(strings.Repeat("<metadata>", 50)))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Arm()()
		u := fuzzUpstream(t)
		_ = parsePrimary(bytes.NewReader(data), true, func(p *pkg) error {
			if p.Name == "" || p.Arch == "" || p.Href == "" || p.Checksum.Hex == "" || p.EVR.Version == "" {
				t.Fatalf("incomplete package accepted: %+v", p)
			}
			checkFuzzLocation(t, u, p.Href, p.Base)
			return nil
		})
	})
}

// fuzzRewrite checks a metadata rewriter: what it writes is well-formed
// XML, and rewriting its own output again changes nothing.
func fuzzRewrite(t *testing.T, data []byte, rewrite func(io.Reader, io.Writer) error) {
	var out bytes.Buffer
	if err := rewrite(bytes.NewReader(data), &out); err != nil {
		return
	}
	if err := wellFormed(out.Bytes()); err != nil {
		t.Fatalf("rewritten document is not well-formed: %v\n%s", err, out.Bytes())
	}
	var again bytes.Buffer
	if err := rewrite(bytes.NewReader(out.Bytes()), &again); err != nil {
		t.Fatalf("rewriting the output again fails: %v\n%s", err, out.Bytes())
	}
	if !bytes.Equal(out.Bytes(), again.Bytes()) {
		t.Fatalf("rewrite is not stable:\n%s\n---\n%s", out.Bytes(), again.Bytes())
	}
}

func wellFormed(doc []byte) error {
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		if _, err := d.Token(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// FuzzFilelists covers filelists.xml and other.xml (both filtered by pkgid).
func FuzzFilelists(f *testing.F) {
	f.Add([]byte(fuzzFilelists))
	f.Add([]byte(strings.Replace(fuzzFilelists, "filelists", "otherdata", -1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Arm()()
		fuzzRewrite(t, data, func(r io.Reader, w io.Writer) error {
			return writeByPkgid(r, w, map[string]bool{fuzzSum: true}, nil)
		})
	})
}

// FuzzUpdateinfo: advisories filtered to a selected package set.
func FuzzUpdateinfo(f *testing.F) {
	f.Add([]byte(fuzzUpdateinfo))
	f.Add([]byte(`<updates><update><pkglist><collection><package name="a"/></collection></pkglist></update></updates>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Arm()()
		sel := map[string]bool{nevraKey("hello", "1", "2.10", "3.el9", "x86_64"): true, nevraKey("a", "", "", "", ""): true}
		fuzzRewrite(t, data, func(r io.Reader, w io.Writer) error { return writeUpdateinfo(r, w, sel, nil) })
	})
}
