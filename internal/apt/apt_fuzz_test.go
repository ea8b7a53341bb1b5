package apt

import (
	"bytes"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/debver"
	"github.com/mirrord/mirrord/internal/fuzzguard"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// Fuzz targets for every parser an upstream's bytes reach. `go test`
// replays testdata/fuzz/FuzzXxx and the f.Add seeds; `make fuzz` explores.

const fuzzStanza = "Package: hello\nVersion: 1:2.10-3+b1\nArchitecture: amd64\nMulti-Arch: foreign\n" +
	"Source: hello (2.10-3)\nDepends: libc6 (>= 2.34), foo | bar:any [amd64] <!nocheck>\n" +
	"Filename: pool/main/h/hello/hello_2.10-3+b1_amd64.deb\nSize: 53152\n" +
	"SHA256: 0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9\n" +
	"Description: example\n a continuation\n .\n more\n"

const fuzzRelease = "Origin: Debian\nSuite: stable\nCodename: bookworm\nDate: Sat, 07 Oct 2023 09:56:34 UTC\n" +
	"Architectures: amd64 arm64\nComponents: main contrib\nAcquire-By-Hash: yes\nMD5Sum:\n 0a1b2c3d4e5f60718293a4b5c6d7e8f9 1 main/binary-amd64/Packages\n" +
	"SHA256:\n 0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9 1234 main/binary-amd64/Packages\n" +
	" 1a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9 99 main/binary-amd64/Packages.xz\n"

// FuzzParagraphs: any input either fails with a line-numbered error or
// yields paragraphs whose raw text parses back to the same fields.
func FuzzParagraphs(f *testing.F) {
	f.Add([]byte(fuzzStanza + "\n" + fuzzStanza))
	f.Add([]byte("# comment\n\n\nA: b\n c\r\n\n \t\nB:\n"))
	f.Add([]byte(" leading continuation\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Arm()()
		p := newParagraphs(bytes.NewReader(data))
		for n := 0; ; n++ {
			ok, err := p.next()
			if err != nil {
				if !strings.Contains(err.Error(), "line ") {
					t.Fatalf("error without a line number: %v", err)
				}
				return
			}
			if !ok {
				return
			}
			var fields []string
			p.each(func(name, value []byte) {
				if len(name) == 0 || bytes.ContainsAny(name, "\n") {
					t.Fatalf("paragraph %d: bad field name %q", n, name)
				}
				fields = append(fields, string(name)+"\x00"+string(value))
			})
			again := newParagraphs(bytes.NewReader(append([]byte(nil), p.raw()...)))
			if ok, err := again.next(); !ok || err != nil {
				t.Fatalf("paragraph %d: raw text %q does not parse again: %v", n, p.raw(), err)
			}
			var fields2 []string
			again.each(func(name, value []byte) { fields2 = append(fields2, string(name)+"\x00"+string(value)) })
			if strings.Join(fields, "\n") != strings.Join(fields2, "\n") {
				t.Fatalf("paragraph %d: re-parse differs:\n%q\n%q", n, fields, fields2)
			}
		}
	})
}

// FuzzRelease: an accepted Release lists only safe, unique paths, and the
// Release mirrord publishes from it parses back to the same files.
func FuzzRelease(f *testing.F) {
	f.Add([]byte(fuzzRelease))
	f.Add([]byte("MD5Sum:\n 0a1b2c3d4e5f60718293a4b5c6d7e8f9 1 main/binary-amd64/Packages\n"))
	f.Add([]byte("SHA256:\n x 1 a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Arm()()
		rel, err := parseRelease(data)
		if err != nil {
			return
		}
		for p, fs := range rel.files {
			if fs.Size < 0 {
				t.Fatalf("%s: negative size", p)
			}
			if _, err := snapshot.CleanPath(p); err != nil {
				t.Fatalf("accepted unsafe path: %v", err)
			}
		}
		out := rel.publish(releaseSpec{Architectures: []string{"amd64"}, Components: []string{"main"}, Files: rel.files})
		back, err := parseRelease(out)
		if err != nil {
			t.Fatalf("published Release does not parse: %v\n%s", err, out)
		}
		if len(back.files) != len(rel.files) {
			t.Fatalf("published Release lists %d files, want %d", len(back.files), len(rel.files))
		}
		for p, fs := range rel.files {
			if back.files[p] != fs {
				t.Fatalf("%s: published %+v, parsed %+v", p, back.files[p], fs)
			}
		}
	})
}

// FuzzInRelease: the clearsigned wrapper (verification off, as with
// insecure_skip_verify) around a Release.
func FuzzInRelease(f *testing.F) {
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n" + fuzzRelease +
		"-----BEGIN PGP SIGNATURE-----\n\niQEzBAEBCAAdFiEE\n=abcd\n-----END PGP SIGNATURE-----\n"))
	f.Add([]byte("-----BEGIN PGP SIGNED MESSAGE-----\n\n- -----dashed\n-----BEGIN PGP SIGNATURE-----\n-----END PGP SIGNATURE-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Arm()()
		u := &upstream{dist: "http://upstream.invalid/dists/x/", inRelease: data}
		err := u.verifyInRelease(nil, "")
		if err == nil && u.rel == nil {
			t.Fatal("accepted without a parsed Release")
		}
		if err != nil && !strings.Contains(err.Error(), "InRelease") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}

// FuzzPackages: a Packages (and Sources) stream; every accepted package
// names a safe pool path outside dists/, a SHA256 and a non-negative size,
// and its relation fields never panic the relation parser.
func FuzzPackages(f *testing.F) {
	f.Add([]byte(fuzzStanza + "\n" + strings.Replace(fuzzStanza, "hello", "other", -1)))
	f.Add([]byte("Package: src\nVersion: 1\nDirectory: pool/main/s/src\nChecksums-Sha256:\n " +
		"0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9 10 src_1.dsc\n"))
	f.Add([]byte(strings.Replace(fuzzStanza, "pool/main", "../../etc", 1)))
	f.Add([]byte(strings.Replace(fuzzStanza, "pool/main", "/etc", 1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		defer fuzzguard.Arm()()
		bp := &binParser{keepRelations: true, strs: map[string]string{}}
		p := newParagraphs(bytes.NewReader(data))
		for ord := 0; ; ord++ {
			ok, err := p.next()
			if err != nil || !ok {
				return
			}
			if pkg, err := bp.parse(p, ord); err == nil {
				checkFuzzPool(t, pkg.File)
				for _, rel := range []string{pkg.PreDepends, pkg.Depends, pkg.Recommends} {
					if alts, err := debver.ParseRelations(rel); err == nil {
						for _, a := range alts {
							_ = a.String()
						}
					}
				}
				_, _ = debver.ParseProvides(pkg.Provides)
			}
			if sp, err := parseSource(p, ord); err == nil {
				for _, pf := range sp.Files {
					checkFuzzPool(t, pf)
				}
			}
		}
	})
}

func checkFuzzPool(t *testing.T, f poolFile) {
	t.Helper()
	if _, err := snapshot.CleanPath(f.Path); err != nil {
		t.Fatalf("accepted unsafe pool path: %v", err)
	}
	if f.Path == "dists" || strings.HasPrefix(f.Path, "dists/") {
		t.Fatalf("accepted a pool path in dists/: %q", f.Path)
	}
	if f.Size < 0 || f.SHA256 == "" {
		t.Fatalf("accepted %+v", f)
	}
}
