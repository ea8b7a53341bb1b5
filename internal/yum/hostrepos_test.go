package yum

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestHostRepos reads .repo files as dnf would: variables expanded, the
// first baseurl and gpgkey, continuation lines, and a note for each
// repository mirrord cannot mirror.
func TestHostRepos(t *testing.T) {
	root := t.TempDir()
	write := func(p, body string) {
		full := filepath.Join(root, p)
		os.MkdirAll(filepath.Dir(full), 0o755)
		os.WriteFile(full, []byte(body), 0o644)
	}
	write("etc/os-release", "ID=rocky\nVERSION_ID=\"9.4\"\n")
	write("etc/yum.repos.d/rocky.repo", `# Rocky
[baseos]
name=BaseOS
baseurl=https://dl.example/$releasever/BaseOS/$basearch/os/
        https://second.example/$releasever/BaseOS/$basearch/os/
gpgcheck=1
gpgkey=file:///etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9

[AppStream]
mirrorlist=https://mirrors.example/?repo=AppStream

[extras]
baseurl=https://dl.example/9/extras/
gpgcheck=0

[Extras]
baseurl=https://dl.example/9/Extras/
gpgcheck=0

[off]
enabled=0
baseurl=https://dl.example/off/

[nokey]
baseurl=https://dl.example/nokey/

[ftp]
baseurl=ftp://dl.example/ftp/
gpgcheck=0
`)
	repos, notes, err := HostRepos(root, "x86_64")
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) != 3 {
		t.Fatalf("repos %+v", repos)
	}
	if r := repos[0]; r.Name != "baseos" || r.URL != "https://dl.example/9/BaseOS/x86_64/os/" || r.GPGKey != "/etc/pki/rpm-gpg/RPM-GPG-KEY-Rocky-9" || !strings.HasSuffix(r.From, "rocky.repo [baseos]") {
		t.Errorf("baseos: %+v", r)
	}
	if repos[1].Name != "extras" || !repos[1].InsecureSkipVerify || repos[2].Name != "extras-2" {
		t.Errorf("extras / Extras: %+v %+v", repos[1], repos[2])
	}
	all := strings.Join(notes, "\n")
	for _, want := range []string{"[AppStream]: skipped: no baseurl", "[off]: skipped: enabled=0", "[nokey]: skipped: gpgcheck is on but no gpgkey", "[ftp]: skipped: baseurl ftp://"} {
		if !strings.Contains(all, want) {
			t.Errorf("notes lack %q:\n%s", want, all)
		}
	}
}
