package yumtest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestFixtureBuildsSignedRepo(t *testing.T) {
	f := NewFixture(t, nil)
	if len(f.RPMs) != len(DefaultPackages()) {
		t.Fatalf("built %d rpms, want %d: %v", len(f.RPMs), len(DefaultPackages()), f.RPMs)
	}
	db := t.TempDir()
	if out, err := exec.Command("rpm", "--dbpath", db, "--import", f.Signer.PublicKeyFile).CombinedOutput(); err != nil {
		t.Fatalf("rpm --import: %v\n%s", err, out)
	}
	for _, p := range f.All() {
		out, err := exec.Command("rpm", "--dbpath", db, "-Kv", p).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Signature, key ID") || strings.Contains(string(out), "NOKEY") {
			t.Errorf("rpm -K %s: %v\n%s", p, err, out)
		}
	}
	out, err := exec.Command("rpm", "-qp", "--qf", "%{EPOCH}:%{VERSION}-%{RELEASE}", f.RPMs["foo-1.0"]).Output()
	if err != nil || string(out) != "2:1.0-1" {
		t.Errorf("foo EVR = %q, %v", out, err)
	}
	dir := f.Repo(t, RepoOptions{Compression: "xz", Checksum: "sha1"})
	for _, name := range []string{"repomd.xml", "repomd.xml.asc"} {
		if _, err := os.Stat(filepath.Join(dir, "repodata", name)); err != nil {
			t.Error(err)
		}
	}
	repomd, _ := os.ReadFile(filepath.Join(dir, "repodata", "repomd.xml"))
	if !strings.Contains(string(repomd), `type="sha1"`) || !strings.Contains(string(repomd), "primary.xml.xz") {
		t.Errorf("repomd.xml is not the sha1/xz variant:\n%s", repomd)
	}
}
