package yum

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/yum/yumtest"
)

const modulesYAML = `---
document: modulemd
version: 2
data:
  name: foomod
  stream: "1"
  version: 1
  context: abcd
  arch: noarch
  summary: foo module
  description: foo module
  license:
    module: [MIT]
  artifacts:
    rpms:
    - foo-2:1.0-1.noarch
...
---
document: modulemd
version: 2
data:
  name: lonelymod
  stream: "1"
  version: 1
  context: abcd
  arch: noarch
  summary: lonely module
  description: lonely module
  license:
    module: [MIT]
  artifacts:
    rpms:
    - lonely-0:0.1-1.noarch
...
---
document: modulemd-defaults
version: 1
data:
  module: foomod
  stream: "1"
...
---
document: modulemd-defaults
version: 1
data:
  module: lonelymod
  stream: "1"
...
`

func filterFoo(o *Options) { o.Verbatim, o.Filter, o.FilterWithDeps = false, []string{"foo"}, true }

func TestFilteredPublish(t *testing.T) {
	f := yumtest.NewFixture(t, nil)
	dir := f.Repo(t, yumtest.RepoOptions{UpdateInfo: updateInfoXML, Comps: compsXML, Modules: modulesYAML, Database: true})
	srv := yumtest.Serve(t, dir)
	h := newHarness(t)
	src := newSource(t, srv, f, filterFoo)
	rec := h.mustSync(src)
	tree := h.tree(rec, "fixture")

	var pkgs []string
	for _, e := range tree.Entries {
		if strings.HasPrefix(e.Path, "Packages/") {
			pkgs = append(pkgs, strings.TrimPrefix(e.Path, "Packages/"))
		}
	}
	want := []string{"bar-1.2-1.noarch.rpm", "baz-1.2-1.noarch.rpm", "foo-1.0-1.noarch.rpm", "qux-2.0-3.noarch.rpm"}
	if strings.Join(pkgs, " ") != strings.Join(want, " ") {
		t.Errorf("packages %v, want %v (foo, the newest bar, baz for the file dependency, qux for qux-api >= 2)", pkgs, want)
	}

	repomd := h.file(rec, "fixture", "repodata/repomd.xml")
	keyring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(h.signer.PublicArmored()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := signing.VerifyDetached(keyring, repomd, h.file(rec, "fixture", "repodata/repomd.xml.asc")); err != nil {
		t.Errorf("repomd.xml.asc does not verify with mirrord's key: %v", err)
	}
	md, err := parseRepomd(repomd)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, d := range md.Data {
		types = append(types, d.Type)
		checkGenerated(t, h, rec, d)
	}
	sort.Strings(types)
	if got := strings.Join(types, " "); got != "filelists group group_gz modules other primary updateinfo" {
		t.Errorf("repomd types %q", got)
	}

	primary := string(h.openData(rec, md, "primary"))
	for _, name := range []string{"<name>foo</name>", "<name>bar</name>", `packages="4"`, `<location href="Packages/foo-1.0-1.noarch.rpm"/>`} {
		if !strings.Contains(primary, name) {
			t.Errorf("primary lacks %s:\n%s", name, primary)
		}
	}
	if strings.Contains(primary, "lonely") || strings.Contains(primary, `ver="0.9"`) {
		t.Errorf("primary lists packages outside the selection:\n%s", primary)
	}
	for _, typ := range []string{"filelists", "other"} {
		if doc := string(h.openData(rec, md, typ)); strings.Count(doc, "<package ") != 4 || !strings.Contains(doc, `packages="4"`) {
			t.Errorf("%s does not list exactly the 4 packages:\n%s", typ, doc)
		}
	}
	ui := string(h.openData(rec, md, "updateinfo"))
	if !strings.Contains(ui, "FIX-2026:0001") || strings.Contains(ui, "FIX-2026:0002") || strings.Contains(ui, "lonely") || !strings.Contains(ui, `name="bar"`) {
		t.Errorf("updateinfo should keep only FIX-2026:0001, without lonely:\n%s", ui)
	}
	if !strings.Contains(ui, "Fixes bar &amp; friends.") {
		t.Errorf("updateinfo text not escaped back:\n%s", ui)
	}
	mods := string(h.openData(rec, md, "modules"))
	if !strings.Contains(mods, "foomod") || strings.Contains(mods, "lonelymod") || strings.Count(mods, "document:") != 2 {
		t.Errorf("modules should keep foomod and its defaults only:\n%s", mods)
	}

	// Unchanged upstream: the same tree, without re-signing.
	srv.Hits()
	rec2 := h.mustSync(src)
	if mustSource(t, rec2, "yum/fixture").Tree != mustSource(t, rec, "yum/fixture").Tree {
		t.Error("unchanged upstream gave a different filtered tree")
	}
	if hits := srv.Hits(); len(hits) != 1 {
		t.Errorf("unchanged upstream: requests %v, want one", hits)
	}

	// Upstream metadata changes that do not touch the selection: the
	// regenerated repomd.xml is byte-identical, its signature reused.
	extra := filepath.Join(t.TempDir(), "productid")
	os.WriteFile(extra, []byte("product\n"), 0o644)
	runTool(t, "modifyrepo_c", "--mdtype", "productid", extra, filepath.Join(dir, "repodata"))
	f.Signer.DetachSign(t, filepath.Join(dir, "repodata", "repomd.xml"))
	rec3 := h.mustSync(src)
	s1, s3 := mustSource(t, rec, "yum/fixture"), mustSource(t, rec3, "yum/fixture")
	if s1.Meta[metaRepomd] == s3.Meta[metaRepomd] {
		t.Fatal("test setup: upstream repomd.xml did not change")
	}
	if s1.Tree != s3.Tree {
		t.Error("an upstream change outside the selection changed the filtered tree")
	}
}

// checkGenerated verifies a repomd entry against the stored file.
func checkGenerated(t *testing.T, h *harness, rec *snapshotRecord, d dataEntry) {
	t.Helper()
	raw := h.file(rec, "fixture", d.Href)
	if sum := sha256.Sum256(raw); d.Checksum.Type == "sha256" && hex.EncodeToString(sum[:]) != d.Checksum.Hex {
		t.Errorf("%s: checksum does not match the file", d.Href)
	}
	if d.Size != int64(len(raw)) {
		t.Errorf("%s: size %d, file has %d", d.Href, d.Size, len(raw))
	}
	if d.OpenChecksum == nil || codecByName(d.Href) == plain {
		return
	}
	rc, _, err := decompress(bytes.NewReader(raw), d.Href)
	if err != nil {
		t.Fatal(err)
	}
	open, _ := io.ReadAll(rc)
	if sum := sha256.Sum256(open); d.OpenChecksum.Type == "sha256" && hex.EncodeToString(sum[:]) != d.OpenChecksum.Hex || int64(len(open)) != d.OpenSize {
		t.Errorf("%s: open-checksum or open-size does not match", d.Href)
	}
}

// openData returns the decompressed content of a repomd data type.
func (h *harness) openData(rec *snapshotRecord, md *repomd, typ string) []byte {
	h.t.Helper()
	d := md.find(typ)
	if d == nil {
		h.t.Fatalf("repomd has no %s", typ)
	}
	rc, _, err := decompress(bytes.NewReader(h.file(rec, "fixture", d.Href)), d.Href)
	if err != nil {
		h.t.Fatal(err)
	}
	data, err := io.ReadAll(rc)
	if err != nil {
		h.t.Fatal(err)
	}
	return data
}

func TestFilterVariants(t *testing.T) {
	f := yumtest.NewFixture(t, nil)
	srv := yumtest.Serve(t, f.Repo(t, yumtest.RepoOptions{Checksum: "sha1", Compression: "xz"}))
	cases := []struct {
		name string
		mod  func(*Options)
		want []string
	}{
		{"without deps", func(o *Options) { o.Verbatim, o.Filter = false, []string{"foo", "lonel?"} }, []string{"foo-1.0-1", "lonely-0.1-1"}},
		{"glob with deps", func(o *Options) { o.Verbatim, o.Filter, o.FilterWithDeps = false, []string{"q*"}, true }, []string{"qux-2.0-3"}},
		{"regenerated, no filter", func(o *Options) { o.Verbatim = false }, []string{"bar-0.9-1", "bar-1.2-1", "baz-1.2-1", "foo-1.0-1", "lonely-0.1-1", "qux-2.0-3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			rec := h.mustSync(newSource(t, srv, f, c.mod))
			var got []string
			for _, e := range h.tree(rec, "fixture").Entries {
				if n, ok := strings.CutPrefix(e.Path, "Packages/"); ok {
					got = append(got, strings.TrimSuffix(n, ".noarch.rpm"))
				}
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("packages %v, want %v", got, c.want)
			}
		})
	}
	h := newHarness(t)
	_, err := h.sync(newSource(t, srv, f, func(o *Options) { o.Verbatim, o.Filter = false, []string{"nosuch*"} }))
	if err == nil || !strings.Contains(err.Error(), "matches no package") {
		t.Errorf("filter matching nothing: err = %v", err)
	}
}

func runTool(t *testing.T, name string, args ...string) {
	t.Helper()
	yumtest.NeedTools(t, name)
	if out, err := execCommand(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", name, err, out)
	}
}
