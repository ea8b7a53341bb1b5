package yum

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/mirrord/mirrord/internal/rpmver"
	"github.com/mirrord/mirrord/internal/yum/yumtest"
)

func TestLocate(t *testing.T) {
	up, err := parseUpstream("http://up.example/9/BaseOS/x86_64/os")
	if err != nil {
		t.Fatal(err)
	}
	ok := []struct{ href, base, rel, url string }{
		{"Packages/a/a-1.rpm", "", "Packages/a/a-1.rpm", "http://up.example/9/BaseOS/x86_64/os/Packages/a/a-1.rpm"},
		{"Packages/g/gcc-c++-11.rpm", "", "Packages/g/gcc-c++-11.rpm", "http://up.example/9/BaseOS/x86_64/os/Packages/g/gcc-c++-11.rpm"},
		{"with space.rpm", "", "with space.rpm", "http://up.example/9/BaseOS/x86_64/os/with%20space.rpm"},
		{"a.rpm", "http://up.example/9/BaseOS/x86_64/os/", "a.rpm", "http://up.example/9/BaseOS/x86_64/os/a.rpm"},
		{"a.rpm", "http://up.example/9/BaseOS/x86_64/os/sub", "sub/a.rpm", "http://up.example/9/BaseOS/x86_64/os/sub/a.rpm"},
		{"a.rpm", "sub/", "sub/a.rpm", "http://up.example/9/BaseOS/x86_64/os/sub/a.rpm"},
	}
	for _, c := range ok {
		rel, u, err := up.locate(c.href, c.base)
		if err != nil || rel != c.rel || u != c.url {
			t.Errorf("locate(%q, %q) = %q, %q, %v; want %q, %q", c.href, c.base, rel, u, err, c.rel, c.url)
		}
	}
	bad := []struct{ href, base string }{
		{"../evil.rpm", ""},
		{"Packages/../../evil.rpm", ""},
		{"/etc/passwd", ""},
		{"http://evil.example/a.rpm", ""},
		{"file:///etc/passwd", ""},
		{"a\\..\\b.rpm", ""},
		{"", ""},
		{"./a.rpm", ""},
		{"a.rpm", "http://evil.example/9/BaseOS/x86_64/os/"},
		{"a.rpm", "https://up.example/9/BaseOS/x86_64/os/"},
		{"a.rpm", "http://up.example/9/AppStream/x86_64/os/"},
		{"a.rpm", "../"},
		{"a.rpm", "http://up.example:8080/9/BaseOS/x86_64/os/"},
		{"a.rpm", "//evil.example/"},
	}
	for _, c := range bad {
		if rel, _, err := up.locate(c.href, c.base); !errors.Is(err, ErrUnsafeLocation) {
			t.Errorf("locate(%q, %q) = %q, %v; want ErrUnsafeLocation", c.href, c.base, rel, err)
		}
	}
}

func TestChecksumTypes(t *testing.T) {
	data := []byte("yum")
	for _, typ := range []string{"md5", "sha", "sha1", "sha224", "sha256", "sha384", "sha512", "SHA256"} {
		h, err := newHash(typ)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		h.Write(data)
		sum, err := newChecksum(typ, hex.EncodeToString(h.Sum(nil)))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		hs, _ := newHasher(sum)
		hs.Write(data)
		if err := hs.check(int64(len(data))); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
		hs.Write([]byte("x"))
		if err := hs.check(0); !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: tampered: %v", typ, err)
		}
	}
	if _, err := newChecksum("crc32", "00000000"); err == nil {
		t.Error("crc32 accepted")
	}
	if _, err := newChecksum("sha256", "abcd"); err == nil {
		t.Error("short sha256 accepted")
	}
}

func TestCompressionDetection(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write([]byte("<metadata/>"))
	zw.Close()
	cases := []struct {
		name string
		data []byte
		want codec
		bad  bool
	}{
		{"primary.xml.gz", buf.Bytes(), gz, false},
		{"primary.xml", buf.Bytes(), gz, false}, // magic wins without an extension
		{"primary.xml", []byte("<metadata/>"), plain, false},
		{"primary.xml.gz", []byte("<metadata/>"), plain, true},
		{"primary.xml.xz", buf.Bytes(), plain, true},
		{"primary.xml.zst", []byte{0x28, 0xb5, 0x2f, 0xfd, 0}, zst, false},
		{"primary.xml.bz2", []byte("BZh91AY"), bz2, false},
		{"primary.xml.zck", []byte("\x00ZCK1"), zck, false},
	}
	for _, c := range cases {
		got, err := detect(c.name, c.data)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("detect(%s) = %q, %v; want %q, bad=%v", c.name, got, err, c.want, c.bad)
		}
	}
	rc, _, err := decompress(bytes.NewReader(buf.Bytes()), "x.gz")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(rc); string(b) != "<metadata/>" {
		t.Errorf("decompressed %q", b)
	}
}

func TestZchunkHeader(t *testing.T) {
	rest := []byte("preface-index-signatures")
	lead := append([]byte("\x00ZCK1"), 0x81, byte(len(rest))|0x80)
	h := sha256.New()
	h.Write(lead)
	h.Write(rest)
	sum := h.Sum(nil)
	head := append(append(append([]byte{}, lead...), sum...), rest...)
	want := Checksum{Type: "sha256", Hex: hex.EncodeToString(sum)}
	if err := checkZchunkHead(head, want); err != nil {
		t.Fatalf("good header: %v", err)
	}
	head[len(head)-1] ^= 1
	if err := checkZchunkHead(head, want); !errors.Is(err, ErrMismatch) {
		t.Errorf("tampered header: %v", err)
	}
	if err := checkZchunkHead(head[:len(head)-1], want); !errors.Is(err, ErrMismatch) {
		t.Errorf("short header: %v", err)
	}
}

func TestParseRepomdRejects(t *testing.T) {
	for name, doc := range map[string]string{
		"no primary":   `<repomd><data type="other"><checksum type="sha256">` + strings.Repeat("a", 64) + `</checksum><location href="o.xml"/></data></repomd>`,
		"bad checksum": `<repomd><data type="primary"><checksum type="sha256">abc</checksum><location href="p.xml"/></data></repomd>`,
		"unknown type": `<repomd><data type="primary"><checksum type="crc">abc</checksum><location href="p.xml"/></data></repomd>`,
		"no location":  `<repomd><data type="primary"><checksum type="sha256">` + strings.Repeat("a", 64) + `</checksum></data></repomd>`,
		"twice": `<repomd><data type="primary"><checksum type="sha256">` + strings.Repeat("a", 64) + `</checksum><location href="p.xml"/></data>` +
			`<data type="primary"><checksum type="sha256">` + strings.Repeat("a", 64) + `</checksum><location href="p.xml"/></data></repomd>`,
		"not xml": `{"repomd": true}`,
	} {
		if _, err := parseRepomd([]byte(doc)); !errors.Is(err, ErrBadMetadata) {
			t.Errorf("%s: err = %v, want ErrBadMetadata", name, err)
		}
	}
}

func TestParsePrimaryRejectsTruncation(t *testing.T) {
	doc := `<?xml version="1.0"?><metadata xmlns="http://linux.duke.edu/metadata/common" packages="2"><package type="rpm"><name>a</name><arch>noarch</arch>` +
		`<version epoch="0" ver="1" rel="1"/><checksum type="sha256" pkgid="YES">` + strings.Repeat("a", 64) + `</checksum><location href="a.rpm"/></package></metadata>`
	n := 0
	err := parsePrimary(strings.NewReader(doc), false, func(*pkg) error { n++; return nil })
	if err == nil || !strings.Contains(err.Error(), "packages=\"2\"") {
		t.Errorf("count mismatch: err = %v", err)
	}
	err = parsePrimary(strings.NewReader(doc[:len(doc)/2]), false, func(*pkg) error { return nil })
	if err == nil {
		t.Error("truncated primary parsed without error")
	}
}

func dep(name string, f rpmver.Flags, evr string) rpmver.Dep {
	return rpmver.Dep{Name: name, Flags: f, EVR: rpmver.ParseEVR(evr)}
}

func testPkg(i int, name, arch, evr string, provides []rpmver.Dep, requires ...rpmver.Dep) *pkg {
	p := &pkg{Index: i, Name: name, Arch: arch, EVR: rpmver.ParseEVR(evr), Requires: requires}
	p.Provides = append([]rpmver.Dep{dep(name, rpmver.EQ, evr)}, provides...)
	return p
}

func TestClosure(t *testing.T) {
	pkgs := []*pkg{
		testPkg(0, "app", "x86_64", "1.0-1", nil,
			dep("lib", rpmver.GE, "1:2.0"), dep("/usr/bin/tool", 0, ""), dep("rpmlib(PayloadIsZstd)", rpmver.LE, "5.4.18-1"),
			dep("(plugin-a or plugin-b)", 0, ""), dep("nowhere", 0, "")),
		testPkg(1, "lib", "x86_64", "1:2.5-1", nil),
		testPkg(2, "lib", "x86_64", "1:3.0-1", nil),
		testPkg(3, "lib", "x86_64", "2.9-1", nil), // no epoch: too old
		testPkg(4, "lib", "i686", "1:9.0-1", nil), // other arch
		testPkg(5, "tools", "noarch", "1.0-1", nil),
		testPkg(6, "plugin-a", "noarch", "1.0-1", nil),
		testPkg(7, "plugin-b", "noarch", "1.0-1", nil),
		testPkg(8, "unrelated", "noarch", "1.0-1", nil),
	}
	pkgs[5].Files = []string{"/usr/bin/tool"}
	sel, unresolved, unmatched := closure(pkgs, []string{"app", "nomatch"}, nil, true, newResolver(pkgs))
	var got []string
	for _, p := range sel {
		got = append(got, p.NEVRA())
	}
	want := []string{"app-1.0-1.x86_64", "lib-1:3.0-1.x86_64", "tools-1.0-1.noarch", "plugin-a-1.0-1.noarch", "plugin-b-1.0-1.noarch"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("selected %v\nwant     %v", got, want)
	}
	if strings.Join(unresolved, ",") != "nowhere" || strings.Join(unmatched, ",") != "nomatch" {
		t.Errorf("unresolved %v unmatched %v", unresolved, unmatched)
	}
	// A requirement already met by a selected package adds nothing.
	// Every version a pattern names is kept; requirements they meet add
	// nothing more.
	sel, _, _ = closure(pkgs, []string{"app", "lib"}, nil, true, newResolver(pkgs))
	if len(sel) != 8 {
		t.Errorf("app+lib selected %d packages, want 8 (all of lib, no unrelated)", len(sel))
	}
	for _, p := range sel {
		if p.Name == "unrelated" {
			t.Error("closure pulled in an unrelated package")
		}
	}
}

func TestRichNames(t *testing.T) {
	got := richNames("((foo >= 1.0 or bar) if baz with (qux < 2))")
	var s []string
	for _, d := range got {
		s = append(s, d.String())
	}
	if strings.Join(s, ", ") != "foo >= 1.0, bar, baz, qux < 2" {
		t.Errorf("richNames = %v", s)
	}
}

func TestTreeinfoMirrored(t *testing.T) {
	f := yumtest.NewFixture(t, []yumtest.Package{{Name: "one"}})
	dir := f.Repo(t, yumtest.RepoOptions{})
	images := map[string][]byte{"images/pxeboot/vmlinuz": []byte("kernel"), "images/install.img": bytes.Repeat([]byte("img"), 5000)}
	var sums strings.Builder
	for p, data := range images {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), data, 0o644)
		s := sha256.Sum256(data)
		fmt.Fprintf(&sums, "%s = sha256:%x\n", p, s)
	}
	ti := "[header]\ntype = productmd.treeinfo\nversion = 1.2\n\n[images-x86_64]\nkernel = images/pxeboot/vmlinuz\n\n[stage2]\nmainimage = images/install.img\n\n[checksums]\n" + sums.String()
	os.WriteFile(filepath.Join(dir, ".treeinfo"), []byte(ti), 0o644)
	srv := yumtest.Serve(t, dir)
	h := newHarness(t)
	rec := h.mustSync(newSource(t, srv, f, nil))
	checkVerbatimFiles(t, h, rec, dir)

	// A corrupted image fails the sync.
	os.WriteFile(filepath.Join(dir, "images/install.img"), []byte("evil"), 0o644)
	os.WriteFile(filepath.Join(dir, "repodata", "repomd.xml.asc"), nil, 0o644)
	f.Signer.DetachSign(t, filepath.Join(dir, "repodata", "repomd.xml"))
	h2 := newHarness(t)
	if _, err := h2.sync(newSource(t, srv, f, nil)); !errors.Is(err, ErrMismatch) || !strings.Contains(err.Error(), "images/install.img") {
		t.Errorf("corrupt image: err = %v", err)
	}
}

// checkVerbatimFiles: every upstream file is in the tree, byte for byte.
func checkVerbatimFiles(t *testing.T, h *harness, rec *snapshotRecord, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			if !bytes.Equal(h.file(rec, "fixture", filepath.ToSlash(rel)), readFile(t, p)) {
				t.Errorf("%s differs from upstream", rel)
			}
		}
		return nil
	})
}

func TestXMLBaseOnUpstream(t *testing.T) {
	f := yumtest.NewFixture(t, []yumtest.Package{{Name: "one"}, {Name: "two", Requires: []string{"one"}}})
	dir := t.TempDir()
	srv := yumtest.Serve(t, dir)
	yumtest.MakeRepo(t, dir, f.All(), f.Signer, yumtest.RepoOptions{BaseURL: srv.BaseURL()})
	h := newHarness(t)
	_, err := h.sync(newSource(t, srv, f, nil))
	if !errors.Is(err, ErrUnsafeLocation) || !strings.Contains(err.Error(), "verbatim: false") {
		t.Fatalf("verbatim with xml:base: err = %v, want advice to set verbatim: false", err)
	}
	rec := h.mustSync(newSource(t, srv, f, func(o *Options) { o.Verbatim = false }))
	md, _ := parseRepomd(h.file(rec, "fixture", "repodata/repomd.xml"))
	primary := string(h.openData(rec, md, "primary"))
	if strings.Contains(primary, "xml:base") || !strings.Contains(primary, `<location href="Packages/two-1.0-1.noarch.rpm"/>`) {
		t.Errorf("regenerated primary keeps xml:base:\n%s", primary)
	}
}

func TestNewAndClientConfig(t *testing.T) {
	for _, o := range []Options{
		{Name: "x", URL: "http://up/"},
		{Name: "x", URL: "ftp://up/", GPGKey: "k"},
		{Name: "X!", URL: "http://up/", GPGKey: "k"},
		{Name: "x", URL: "http://up/", GPGKey: "k", Verbatim: true, Filter: []string{"a"}},
		{Name: "x", URL: "http://up/", GPGKey: "k", Filter: []string{"[a"}},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("New(%+v) accepted", o)
		}
	}
	verbatim, _ := New(Options{Name: "baseos", URL: "http://up/os/", GPGKey: "/k", Verbatim: true})
	cc := verbatim.ClientConfig("http://m/snapshots/ID/yum/baseos", "http://m/keys/mirrord.asc")
	for _, want := range []string{"[mirrord-baseos]", "baseurl=http://m/snapshots/ID/yum/baseos/", "gpgcheck=1", "repo_gpgcheck=1", "gpgkey=http://m/snapshots/ID/yum/baseos/RPM-GPG-KEY-upstream\n"} {
		if !strings.Contains(cc, want) {
			t.Errorf("verbatim client config lacks %q:\n%s", want, cc)
		}
	}
	filtered, _ := New(Options{Name: "sub", URL: "http://up/os/", InsecureSkipVerify: true, Filter: []string{"a"}})
	cc = filtered.ClientConfig("http://m/channels/prod/yum/sub", "http://m/keys/mirrord.asc")
	for _, want := range []string{"gpgcheck=0", "repo_gpgcheck=1", "gpgkey=http://m/keys/mirrord.asc\n", "not signature-checked"} {
		if !strings.Contains(cc, want) {
			t.Errorf("filtered client config lacks %q:\n%s", want, cc)
		}
	}
}
