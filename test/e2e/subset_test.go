package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/yum/yumtest"
)

// A filter pattern that matches nothing is a typo, not an empty mirror:
// sync exits 1 naming the pattern and the source, and writes no snapshot.
func TestFilterMatchingNothingFails(t *testing.T) {
	t.Run("apt", func(t *testing.T) {
		up := demoUpstream(t)
		e := newAptEnv(t, up, freePort(t), "    filter: [demo-app, demo-ap]\n    filter_with_deps: true\n")
		checkUnmatched(t, e, "apt/demo", `"demo-ap"`)
	})
	t.Run("yum", func(t *testing.T) {
		up := newYumUpstream(t)
		e := newEnv(t)
		e.writeConfig(`data_dir: data
yum:
  - name: subset
    url: ` + up.BaseURL() + `
    gpgkey: ` + up.fix.Signer.PublicKeyFile + `
    filter: [foo, fooo]
`)
		checkUnmatched(t, e, "yum/subset", `"fooo"`)
	})
}

func checkUnmatched(t *testing.T, e *env, source, pattern string) {
	t.Helper()
	r := e.run("sync")
	if r.code != 1 || !strings.Contains(r.stderr, source) || !strings.Contains(r.stderr, pattern) || !strings.Contains(r.stderr, "matches no package") {
		t.Fatalf("sync: exit %d, stderr:\n%s\nwant exit 1 naming %s and %s", r.code, r.stderr, source, pattern)
	}
	if ids, _ := os.ReadDir(filepath.Join(e.dir, "data", "meta", "snapshots")); len(ids) != 0 {
		t.Errorf("a snapshot was written: %v", ids)
	}
}

// yumSubsetEnv is a mirrord installation with one yum source for up.
func yumSubsetEnv(t *testing.T, up *yumtest.Server, key, addr, extra string) *env {
	e := newEnv(t)
	e.writeConfig(fmt.Sprintf(`data_dir: data
public_url: http://%s
yum:
  - name: subset
    url: %s
    gpgkey: %s
%s`, addr, up.URL+"/", key, extra))
	return e
}

// dnfAssumeNo runs dnf install --assumeno in a clean installroot whose
// only repository is the snapshot's subset: it resolves the whole
// transaction and stops before installing. It returns dnf's output and
// whether the transaction resolved.
func dnfAssumeNo(t *testing.T, base, id, upKey, pkg string) (string, bool) {
	t.Helper()
	key := filepath.Join(t.TempDir(), "mirrord.asc")
	_, body := get(t, base+"/keys/mirrord.asc", nil)
	os.WriteFile(key, body, 0o644)
	repos := writeRepo(t, repoStanza("mirror-subset", base+"/snapshots/"+id+"/yum/subset/", "file://"+upKey, "file://"+key))
	root := t.TempDir()
	mustDnf(t, root, repos, "makecache") // imports the keys (--assumeno would decline them)
	cmd := exec.Command("dnf", "--assumeno", "--installroot="+root, "--setopt=reposdir="+repos, "--releasever=9",
		"--setopt=skip_if_unavailable=False", "--setopt=install_weak_deps=False", "--noplugins", "install", pkg)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	out, _ := cmd.CombinedOutput()
	// --assumeno always exits 1; a resolved transaction is listed and
	// then "Operation aborted".
	return string(out), strings.Contains(string(out), "Operation aborted") && !strings.Contains(string(out), "Problem")
}

// yum filter_check and filter_from, proven with dnf against only the
// published subset in a clean installroot.
func TestYumFilterCheckAndNodeList(t *testing.T) {
	up := newYumUpstream(t)
	upKey := up.fix.Signer.PublicKeyFile

	t.Run("filter_check", func(t *testing.T) {
		addr := freePort(t)
		e := yumSubsetEnv(t, up.Server, upKey, addr, "    filter: [foo, qux]\n    filter_with_deps: true\n    filter_check: true\n")
		id := e.sync()
		base := e.serve(addr)
		for _, pkg := range []string{"foo", "qux"} {
			if out, ok := dnfAssumeNo(t, base, id, upKey, pkg); !ok || !strings.Contains(out, pkg) {
				t.Errorf("dnf install --assumeno %s against the subset does not resolve:\n%s", pkg, out)
			}
		}
	})

	t.Run("filter_from", func(t *testing.T) {
		addr := freePort(t)
		list := filepath.Join(t.TempDir(), "node.list")
		// rpm -qa --qf '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n' on a node
		// with bar 0.9 (older than the upstream's newest) and qux
		os.WriteFile(list, []byte("bar-0.9-1.noarch\nqux-2.0-3.noarch\ngpg-pubkey-12345678-9abcdef0\n"), 0o644)
		e := yumSubsetEnv(t, up.Server, upKey, addr, "    filter_from: "+list+"\n    filter_check: true\n")
		id := e.sync()
		base := e.serve(addr)
		_, body := get(t, base+"/api/v1/snapshots/"+id, nil)
		for _, want := range []string{"bar-0.9-1.noarch.rpm", "qux-2.0-3.noarch.rpm"} {
			if resp, _ := get(t, base+"/snapshots/"+id+"/yum/subset/Packages/"+want, nil); resp.StatusCode != 200 {
				t.Errorf("%s: %d, want it mirrored", want, resp.StatusCode)
			}
		}
		for _, not := range []string{"bar-1.2-1.noarch.rpm", "foo-1.0-1.noarch.rpm", "lonely-0.1-1.noarch.rpm"} {
			if resp, _ := get(t, base+"/snapshots/"+id+"/yum/subset/Packages/"+not, nil); resp.StatusCode != 404 {
				t.Errorf("%s: %d, want it left out (%s)", not, resp.StatusCode, body)
			}
		}
		if out, ok := dnfAssumeNo(t, base, id, upKey, "bar-0.9"); !ok || !strings.Contains(out, "0.9-1") {
			t.Errorf("dnf cannot install the node's bar 0.9 from the subset:\n%s", out)
		}
		os.WriteFile(list, []byte("bar-0.9-1.noarch\nbar-7.0-1.noarch\nnope-1-1.x86_64\n"), 0o644)
		r := e.run("sync")
		if r.code != 1 || !strings.Contains(r.stderr, "bar-7.0-1.noarch, nope-1-1.x86_64") {
			t.Errorf("sync with versions the upstream lacks: exit %d\n%s", r.code, r.stderr)
		}
	})
}

// yum retain: after the upstream replaced lonely 0.1 by 0.2, the new
// snapshot still installs lonely 0.1 with dnf, from the subset alone.
func TestYumRetainInstallsDroppedVersion(t *testing.T) {
	up := newYumUpstream(t)
	upKey := up.fix.Signer.PublicKeyFile
	addr := freePort(t)
	e := yumSubsetEnv(t, up.Server, upKey, addr, "    retain: {versions: 2}\n")
	e.sync()
	newer := yumtest.Build(t, t.TempDir(), []yumtest.Package{{Name: "lonely", Version: "0.2", Release: "1"}})
	up.fix.Signer.SignRPMs(t, newer...)
	os.Remove(filepath.Join(up.dir, "Packages", "lonely-0.1-1.noarch.rpm"))
	yumtest.MakeRepo(t, up.dir, newer, up.fix.Signer, yumtest.RepoOptions{UpdateInfo: updateInfo, Comps: comps})
	id2 := e.sync()
	base := e.serve(addr)
	for _, want := range []string{"lonely-0.1", "lonely-0.2"} {
		if out, ok := dnfAssumeNo(t, base, id2, upKey, want); !ok || !strings.Contains(out, strings.TrimPrefix(want, "lonely-")+"-1") {
			t.Errorf("dnf install --assumeno %s from the retained snapshot:\n%s", want, out)
		}
	}
}
