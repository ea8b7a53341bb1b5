package apt

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/config"
)

// dep11YAML is an AppStream DEP-11 document as appstream-generator
// writes Components-ARCH.yml: a header document, then one per component.
const dep11YAML = `---
File: DEP-11
Version: '0.12'
Origin: apttest-stable-main
MediaBaseUrl: https://appstream.example.invalid/media/
---
Type: desktop-application
ID: org.example.Hello
Package: hello
Name:
  C: Hello
Summary:
  C: Says hello
Icon:
  cached:
  - name: hello_org.example.Hello.png
    width: 64
    height: 64
`

// iconsTar is icons-64x64.tar as appstream-generator writes it: the
// cached icons, named PACKAGE_ID.png.
func iconsTar(t *testing.T) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	png := []byte("\x89PNG\r\n\x1a\nnot really an image")
	tw.WriteHeader(&tar.Header{Name: "hello_org.example.Hello.png", Mode: 0o644, Size: int64(len(png))})
	tw.Write(png)
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// udebs, Contents (made by apt-ftparchive contents), DEP-11 components
// and icons, and Translation files: each is mirrored, verified against
// the upstream Release, listed in mirrord's Release, and fetched by stock
// apt through its index targets.
func TestUdebsContentsDEP11Translations(t *testing.T) {
	up := apttest.New(t, apttest.Options{Debs: debCache})
	up.Add(t, apttest.Package{Name: "hello", Version: "1.0-1"}, apttest.Package{Name: "di-hello", Version: "1.0-1", Udeb: true})
	up.Publish(t)
	up.WriteIndex(t, "dists/stable/main/Contents-amd64", up.FTPArchive(t, "contents", "pool/main"))
	up.WriteIndex(t, "dists/stable/main/dep11/Components-amd64.yml", []byte(dep11YAML))
	up.WriteIndex(t, "dists/stable/main/dep11/icons-64x64.tar", iconsTar(t)) // Debian lists the plain tar too
	up.WriteIndex(t, "dists/stable/main/i18n/Translation-en", []byte("Package: hello\nDescription-md5: 0123456789abcdef0123456789abcdef\nDescription-en: hello\n says hello\n\n"))
	up.WriteIndex(t, "dists/stable/main/i18n/Translation-de", []byte("Package: hello\nDescription-md5: 0123456789abcdef0123456789abcdef\nDescription-de: hallo\n sagt hallo\n\n"))
	up.Release(t, "stable")
	if !strings.Contains(string(up.ReadFile(t, "dists/stable/main/Contents-amd64")), "usr/share/doc/hello/payload") {
		t.Fatal("apt-ftparchive contents did not list hello's file")
	}

	m := newMirror(t)
	cfg := aptConfig(up, func(c *config.AptSource) {
		c.Udebs, c.Contents, c.DEP11, c.Translations = true, true, true, []string{"en", "de"}
	})
	rec := m.mustSync(newSource(t, cfg))
	tree := m.tree(rec)
	for _, p := range []string{
		"dists/stable/main/debian-installer/binary-amd64/Packages.xz",
		"pool/main/d/di-hello/di-hello_1.0-1_amd64.udeb",
		"dists/stable/main/dep11/icons-64x64.tar",
		"dists/stable/main/dep11/Components-amd64.yml",
		"dists/stable/main/Contents-amd64",
		"dists/stable/main/i18n/Translation-de",
	} {
		if _, ok := tree.Lookup(p); !ok {
			t.Errorf("tree lacks %s", p)
		}
	}
	for _, prefix := range []string{"dists/stable/main/Contents-amd64", "dists/stable/main/dep11/Components-amd64.yml", "dists/stable/main/i18n/Translation-en", "dists/stable/main/i18n/Translation-de"} {
		found := false
		for _, e := range tree.Entries {
			found = found || strings.HasPrefix(e.Path, prefix)
		}
		if !found {
			t.Errorf("tree has no form of %s", prefix)
		}
	}
	checkRelease(t, m, rec, up)

	c := m.client(m.serve(rec), "stable")
	conf := `#clear Acquire::Languages;
Acquire::Languages { "en"; "de"; };
Acquire::IndexTargets::deb::Contents-deb { MetaKey "$(COMPONENT)/Contents-$(ARCHITECTURE)"; ShortDescription "Contents-$(ARCHITECTURE)"; Description "$(RELEASE)/$(COMPONENT) $(ARCHITECTURE) Contents (deb)"; };
Acquire::IndexTargets::deb::DEP-11 { MetaKey "$(COMPONENT)/dep11/Components-$(ARCHITECTURE).yml"; ShortDescription "Components-$(ARCHITECTURE)"; Description "$(RELEASE)/$(COMPONENT) $(ARCHITECTURE) DEP-11 Metadata"; };
Acquire::IndexTargets::deb::DEP-11-icons { MetaKey "$(COMPONENT)/dep11/icons-64x64.tar"; ShortDescription "icons-64x64"; Description "$(RELEASE)/$(COMPONENT) DEP-11 64x64 Icons"; };
Acquire::IndexTargets::deb::Packages-udeb { MetaKey "$(COMPONENT)/debian-installer/binary-$(ARCHITECTURE)/Packages"; ShortDescription "Packages-udeb"; Description "$(RELEASE)/$(COMPONENT) $(ARCHITECTURE) udeb Packages"; };
`
	if err := os.WriteFile(filepath.Join(c.Dir, "etc", "apt.conf.d", "targets.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out := c.Update("-o", "Acquire::Languages=en,de")
	lists, _ := filepath.Glob(filepath.Join(c.Dir, "state", "lists", "*"))
	names := strings.Join(lists, "\n")
	for _, want := range []string{"_main_Contents-amd64", "_main_dep11_Components-amd64.yml", "_main_dep11_icons-64x64.tar", "_main_debian-installer_binary-amd64_Packages", "_main_i18n_Translation-en", "_main_i18n_Translation-de"} {
		if !strings.Contains(names, want) {
			t.Errorf("apt did not fetch %s; lists:\n%s\napt-get update:\n%s", want, names, out)
		}
	}

	// A file that does not match the upstream Release fails the sync.
	up.WriteFile(t, "dists/stable/main/dep11/icons-64x64.tar.gz", []byte("tampered"))
	if _, err := newMirror(t).sync(newSource(t, cfg)); err == nil || !strings.Contains(err.Error(), "icons-64x64.tar.gz") {
		t.Errorf("a tampered icons file: err = %v", err)
	}
}
