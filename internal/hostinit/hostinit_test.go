package hostinit

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/config"
)

// hostTree writes files below a fake root.
func hostTree(t *testing.T, files map[string]string) string {
	root := t.TempDir()
	for p, body := range files {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

const inlineKeySources = `Types: deb
URIs: https://vendor.example/apt
Suites: stable
Components: main
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mDMEZxxxxx
 =abcd
 -----END PGP PUBLIC KEY BLOCK-----
`

func TestInitFromHostSources(t *testing.T) {
	root := hostTree(t, map[string]string{
		"etc/apt/sources.list": `# comment
deb [arch=amd64 signed-by=/usr/share/keyrings/vendor.gpg] http://vendor.example/debian bookworm main contrib
deb cdrom:[Debian GNU/Linux]/ bookworm main
deb http://flat.example/repo ./
deb [trusted=yes] http://local.example/apt internal main
deb [arch=amd64 http://broken.example/debian bookworm main
deb http://nosuite.example/debian
rpm http://wrongtype.example/x y main
`,
		"etc/apt/sources.list.d/debian.sources": `Types: deb deb-src
URIs: http://deb.example.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.example.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: x
Components: main
`,
		"etc/apt/sources.list.d/vendor.sources":         inlineKeySources,
		"etc/apt/sources.list.d/legacy.list":            "deb http://legacy.example/ubuntu jammy main universe\n",
		"etc/apt/trusted.gpg.d/legacy.gpg":              "binary key bytes",
		"etc/os-release":                                "ID=rocky\nVERSION_ID=\"9.4\"\n",
		"etc/yum.repos.d/rocky.repo":                    "[baseos]\nname=BaseOS\nbaseurl=https://dl.example/$releasever/BaseOS/$basearch/os/\ngpgcheck=1\ngpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9\n\n[appstream]\nname=AppStream\nmirrorlist=https://mirrors.example/?repo=AppStream\n",
		"usr/share/keyrings/debian-archive-keyring.gpg": "x",
	})
	out := filepath.Join(t.TempDir(), "conf", "mirrord.yaml")
	var stdout bytes.Buffer
	if err := Run(&stdout, Options{Root: root, Output: out, Filter: DefaultFilter()}); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(out)
	if err != nil {
		t.Fatal(err)
	}
	text, _ := os.ReadFile(out)
	byName := map[string]config.AptSource{}
	for _, s := range cfg.Apt {
		byName[s.Name] = s
	}
	deb := byName["debian-2"] // the vendor line in sources.list came first
	if deb.URL != "http://deb.example.org/debian" || !slices.Equal(deb.Suites, []string{"bookworm", "bookworm-updates"}) || !deb.Sources ||
		deb.Keyring != filepath.Join(root, "usr/share/keyrings/debian-archive-keyring.gpg") || !deb.FilterWithDeps ||
		!slices.Equal(deb.Filter, []string{"ca-certificates", "curl"}) {
		t.Errorf("debian: %+v", deb)
	}
	if sec := byName["debian-security"]; !slices.Equal(sec.Suites, []string{"bookworm-security"}) {
		t.Errorf("debian-security: %+v", sec)
	}
	if v := byName["debian"]; v.URL != "http://vendor.example/debian" || !slices.Equal(v.Components, []string{"main", "contrib"}) || !slices.Equal(v.Architectures, []string{"amd64"}) {
		t.Errorf("vendor one-line entry: %+v\n%s", v, text)
	}
	if l := byName["apt"]; !l.InsecureSkipVerify || byName["apt-2"].URL != "https://vendor.example/apt" {
		t.Errorf("trusted=yes / inline key entries: %+v %+v", l, byName["apt-2"])
	}
	inline := byName["apt-2"]
	if key, err := os.ReadFile(inline.Keyring); err != nil || !strings.HasPrefix(string(key), "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmDMEZxxxxx\n") {
		t.Errorf("inline key written as %q (%v)", key, err)
	}
	if key, err := os.ReadFile(byName["ubuntu"].Keyring); err != nil || string(key) != "binary key bytes" {
		t.Errorf("legacy entry keyring %q: %q %v", byName["ubuntu"].Keyring, key, err)
	}
	if len(cfg.Yum) != 1 || cfg.Yum[0].Name != "baseos" || !strings.HasPrefix(cfg.Yum[0].URL, "https://dl.example/9/BaseOS/") ||
		cfg.Yum[0].GPGKey != "/etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9" {
		t.Errorf("yum: %+v", cfg.Yum)
	}
	for _, note := range []string{"cdrom", "flat repository", "Enabled: no", "mirrorlist",
		"sources.list:6: skipped: unclosed '['", "sources.list:7: skipped: want URI and suite", `sources.list:8: skipped: unknown type "rpm"`} {
		if !strings.Contains(string(text), note) {
			t.Errorf("config lacks a note about %q:\n%s", note, text)
		}
	}
	if err := Run(&stdout, Options{Root: root, Output: out}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Errorf("overwriting without --force: %v", err)
	}
	if err := Run(&stdout, Options{Root: t.TempDir(), Output: filepath.Join(t.TempDir(), "m.yaml")}); err == nil {
		t.Error("a host without sources produced a config")
	}
}
