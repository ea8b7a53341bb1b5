package e2e

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mirrord/mirrord/internal/yum/yumtest"
)

// How Debian's stock dnf (4.14) installs from a mirrord snapshot, found by
// trying:
//   - --installroot=DIR with a fresh temp dir works for a real install (no
//     --downloadonly needed): dnf creates the rpmdb inside it;
//   - --setopt=reposdir=DIR points it at our .repo file only (Debian ships
//     no repos, but the host's /etc/yum.repos.d must not matter);
//   - --releasever is required: there is no system-release package to
//     derive it from;
//   - gpgcheck=1 imports the keys of gpgkey= into the installroot's rpmdb
//     by itself under -y ("Importing GPG key ..."), so no `rpm --import`
//     is needed; gpgkey= takes file:// and http:// URLs, several separated
//     by spaces;
//   - repo_gpgcheck=1 verifies repodata/repomd.xml.asc with the same keys;
//   - --setopt=skip_if_unavailable=False makes a metadata failure (e.g. a
//     bad repomd.xml.asc) an error instead of "Ignoring repositories".

// dnfRun runs dnf on an installroot with only the repos in reposdir.
func dnfRun(t *testing.T, root, reposdir string, args ...string) (string, error) {
	t.Helper()
	base := []string{"-y", "--installroot=" + root, "--setopt=reposdir=" + reposdir,
		"--releasever=9", "--setopt=skip_if_unavailable=False", "--setopt=install_weak_deps=False", "--noplugins"}
	cmd := exec.Command("dnf", append(base, args...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustDnf(t *testing.T, root, reposdir string, args ...string) string {
	t.Helper()
	out, err := dnfRun(t, root, reposdir, args...)
	if err != nil {
		t.Fatalf("dnf %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// writeRepo writes a .repo file into a fresh reposdir.
func writeRepo(t *testing.T, stanza string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mirrord.repo"), []byte(stanza), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func repoStanza(id, baseurl string, keys ...string) string {
	return fmt.Sprintf("[%s]\nname=%s\nbaseurl=%s\nenabled=1\ngpgcheck=1\nrepo_gpgcheck=1\ngpgkey=%s\n", id, id, baseurl, strings.Join(keys, " "))
}

// installed lists "name-version-release" of the installroot's packages.
func installed(t *testing.T, root string) string {
	t.Helper()
	out, err := exec.Command("rpm", "--root", root, "-qa", "--qf", "%{NAME}-%{VERSION}-%{RELEASE}\n").Output()
	if err != nil {
		t.Fatalf("rpm -qa: %v", err)
	}
	return string(out)
}

// yumUpstream is a fixture repository served on 127.0.0.1, which a test
// can make unreachable.
type yumUpstream struct {
	*yumtest.Server
	fix  *yumtest.Fixture
	dir  string
	down atomic.Bool
}

func newYumUpstream(t *testing.T) *yumUpstream {
	t.Helper()
	yumtest.NeedTools(t, "dnf", "rpm")
	u := &yumUpstream{fix: yumtest.NewFixture(t, nil), dir: t.TempDir()}
	yumtest.MakeRepo(t, u.dir, u.fix.All(), u.fix.Signer, yumtest.RepoOptions{UpdateInfo: updateInfo, Comps: comps})
	u.Server = yumtest.Serve(t, u.dir)
	u.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if u.down.Load() {
			http.Error(w, "upstream is down", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	return u
}

func yumConfig(publicURL, upURL, key string) string {
	return fmt.Sprintf(`data_dir: data
public_url: %s
auth: {token_file: token}
sync: {retries: 1}
yum:
  - name: base
    url: %s
    gpgkey: %s
  - name: subset
    url: %s
    gpgkey: %s
    filter: [foo]
    filter_with_deps: true
`, publicURL, upURL, key, upURL, key)
}

func TestYumDnfInstallFromSnapshots(t *testing.T) {
	up := newYumUpstream(t)
	e := newEnv(t)
	os.WriteFile(filepath.Join(e.dir, "token"), []byte("s3cret\n"), 0o600)
	addr := freePort(t)
	e.writeConfig(yumConfig("http://"+addr, up.BaseURL(), up.fix.Signer.PublicKeyFile))
	id1 := e.sync()
	base := e.serve(addr)

	// Verbatim: upstream's repomd.xml and its signature, byte for byte.
	for _, f := range []string{"repodata/repomd.xml", "repodata/repomd.xml.asc"} {
		_, body := get(t, base+"/snapshots/"+id1+"/yum/base/"+f, nil)
		if want, _ := os.ReadFile(filepath.Join(up.dir, f)); !bytes.Equal(body, want) {
			t.Errorf("verbatim %s differs from upstream's", f)
		}
	}
	// The upstream is unreachable from here on: dnf only has the mirror.
	up.down.Store(true)
	upKey := "file://" + up.fix.Signer.PublicKeyFile
	mirrordKey := filepath.Join(t.TempDir(), "mirrord.asc")
	_, keyBody := get(t, base+"/keys/mirrord.asc", nil)
	if err := os.WriteFile(mirrordKey, keyBody, 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("verbatim", func(t *testing.T) {
		root := t.TempDir()
		repos := writeRepo(t, repoStanza("mirror-base", base+"/snapshots/"+id1+"/yum/base/", upKey))
		mustDnf(t, root, repos, "makecache")
		mustDnf(t, root, repos, "install", "foo")
		got := installed(t, root)
		for _, want := range []string{"foo-1.0-1", "bar-1.2-1", "baz-1.2-1", "qux-2.0-3"} {
			if !strings.Contains(got, want) {
				t.Errorf("installroot lacks %s; installed:\n%s", want, got)
			}
		}
		if _, err := os.Stat(filepath.Join(root, "usr/share/baz/marker")); err != nil {
			t.Errorf("file dependency not installed: %v", err)
		}
	})

	t.Run("filtered", func(t *testing.T) {
		root := t.TempDir()
		repos := writeRepo(t, repoStanza("mirror-subset", base+"/snapshots/"+id1+"/yum/subset/", upKey, "file://"+mirrordKey))
		mustDnf(t, root, repos, "makecache")
		mustDnf(t, root, repos, "install", "foo")
		if got := installed(t, root); !strings.Contains(got, "foo-1.0-1") || !strings.Contains(got, "baz-1.2-1") {
			t.Errorf("installroot lacks foo or its dependencies:\n%s", got)
		}
		if out, err := dnfRun(t, root, repos, "install", "lonely"); err == nil {
			t.Errorf("lonely is outside the filter but installed:\n%s", out)
		}
		// mirrord's signature is what repo_gpgcheck checks: without its
		// key the filtered repository is refused.
		root2 := t.TempDir()
		noKey := writeRepo(t, repoStanza("mirror-subset", base+"/snapshots/"+id1+"/yum/subset/", upKey))
		if out, err := dnfRun(t, root2, noKey, "makecache"); err == nil {
			t.Errorf("dnf accepted the filtered repomd.xml without mirrord's key:\n%s", out)
		}
	})
	if t.Failed() {
		return
	}
	up.down.Store(false)
	checkYumUpdate(t, e, up, base, id1)
}

// checkYumUpdate: upstream update → new snapshot → diff shows it → the old
// snapshot still serves the old packages; promote/rollback move the channel;
// client-config's stanza works with dnf.
func checkYumUpdate(t *testing.T, e *env, up *yumUpstream, base, id1 string) {
	newer := yumtest.Build(t, t.TempDir(), []yumtest.Package{{Name: "lonely", Version: "0.2", Release: "1"}, {Name: "fresh", Version: "1.0"}})
	up.fix.Signer.SignRPMs(t, newer...)
	os.Remove(filepath.Join(up.dir, "Packages", "lonely-0.1-1.noarch.rpm"))
	yumtest.MakeRepo(t, up.dir, newer, up.fix.Signer, yumtest.RepoOptions{UpdateInfo: updateInfo, Comps: comps})
	id2 := e.sync()
	diff := e.must("snapshot", "diff", id1, id2)
	for _, want := range []string{"yum/base: changed", "~ lonely.noarch 0.1-1 -> 0.2-1", "+ fresh.noarch 1.0-1"} {
		if !strings.Contains(diff, want) {
			t.Errorf("diff lacks %q:\n%s", want, diff)
		}
	}
	// The filtered source's packages did not change (its metadata did:
	// the upstream regenerated it).
	if _, sub, _ := strings.Cut(diff, "yum/subset:"); strings.Contains(sub, "lonely") || strings.Contains(sub, "fresh") {
		t.Errorf("diff shows package changes in the filtered source:\n%s", diff)
	}
	old := base + "/snapshots/" + id1 + "/yum/base/Packages/lonely-0.1-1.noarch.rpm"
	if resp, body := get(t, old, nil); resp.StatusCode != 200 || !bytes.Equal(body, mustRead(t, up.fix.RPMs["lonely-0.1"])) {
		t.Errorf("old snapshot no longer serves lonely-0.1-1: status %d", resp.StatusCode)
	}

	e.must("snapshot", "promote", id1, "production")
	e.must("snapshot", "promote", id2, "production")
	repomd := func(id string) []byte {
		_, b := get(t, base+"/snapshots/"+id+"/yum/base/repodata/repomd.xml", nil)
		return b
	}
	waitBody(t, base+"/channels/production/yum/base/repodata/repomd.xml", repomd(id2))
	e.must("snapshot", "rollback", "production")
	waitBody(t, base+"/channels/production/yum/base/repodata/repomd.xml", repomd(id1))

	cc := e.must("client-config", "--channel", "production")
	for _, want := range []string{"[mirrord-base]", "baseurl=" + base + "/channels/production/yum/base/", "gpgcheck=1", "repo_gpgcheck=1",
		"gpgkey=" + base + "/channels/production/yum/subset/RPM-GPG-KEY-upstream " + base + "/keys/mirrord.asc"} {
		if !strings.Contains(cc, want) {
			t.Errorf("client-config lacks %q:\n%s", want, cc)
		}
	}
	root := t.TempDir()
	repos := writeRepo(t, cc)
	up.down.Store(true)
	mustDnf(t, root, repos, "install", "foo", "lonely")
	if got := installed(t, root); !strings.Contains(got, "lonely-0.1-1") {
		t.Errorf("the rolled-back channel should install lonely 0.1; installed:\n%s", got)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const updateInfo = `<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="security@example.org" status="final" type="security" version="2.0">
    <id>FIX-2026:0001</id>
    <title>bar update</title>
    <issued date="2026-01-01 00:00:00"/>
    <summary>bar fix</summary>
    <description>Fixes bar.</description>
    <pkglist>
      <collection short="fixture">
        <name>fixture</name>
        <package name="bar" version="1.2" release="1" epoch="0" arch="noarch" src="bar-1.2-1.src.rpm">
          <filename>bar-1.2-1.noarch.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
</updates>
`

const comps = `<?xml version="1.0" encoding="UTF-8"?>
<comps>
  <group>
    <id>fixture-tools</id>
    <name>Fixture tools</name>
    <description>Tools.</description>
    <default>false</default>
    <uservisible>true</uservisible>
    <packagelist>
      <packagereq type="mandatory">foo</packagereq>
    </packagelist>
  </group>
</comps>
`

// A bad upstream fails `mirrord sync` with a message naming the file and
// the key, and no snapshot appears.
func TestYumSyncRefusesBadSignature(t *testing.T) {
	yumtest.NeedTools(t, "rpmbuild", "createrepo_c", "gpg")
	fix := yumtest.NewFixture(t, []yumtest.Package{{Name: "solo"}})
	other := yumtest.NewSigner(t, "Mallory <mallory@example.org>")
	dir := t.TempDir()
	yumtest.MakeRepo(t, dir, fix.All(), other, yumtest.RepoOptions{})
	srv := yumtest.Serve(t, dir)
	e := newEnv(t)
	e.writeConfig(fmt.Sprintf("data_dir: data\nsync: {retries: 1}\nyum:\n  - name: base\n    url: %s\n    gpgkey: %s\n", srv.BaseURL(), fix.Signer.PublicKeyFile))
	r := e.run("sync")
	if r.code == 0 {
		t.Fatalf("sync succeeded against a repository signed by the wrong key:\n%s", r.stdout)
	}
	for _, want := range []string{"yum/base", "repomd.xml.asc", other.Fingerprint, fix.Signer.PublicKeyFile} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("error does not mention %q:\n%s", want, r.stderr)
		}
	}
	if out := e.must("snapshot", "list"); strings.Contains(out, "yum/base") {
		t.Errorf("a failed sync left a snapshot:\n%s", out)
	}
}
