package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/requiretool"
)

// trixieRoot is the Debian trixie root .ci/trixie.sh builds (apt >= 2.7,
// which has `apt update --snapshot`): $MIRRORD_TRIXIE_ROOT, else the
// newest one in the test cache.
func trixieRoot(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("MIRRORD_TRIXIE_ROOT"); p != "" {
		if _, err := os.Stat(filepath.Join(p, "usr/bin/apt")); err != nil {
			t.Fatalf("MIRRORD_TRIXIE_ROOT=%s: %v", p, err)
		}
		return p
	}
	cache := os.Getenv("MIRRORD_TEST_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "mirrord-test")
	}
	roots, _ := filepath.Glob(filepath.Join(cache, "trixie-*", "root", ".complete"))
	if len(roots) == 0 {
		requiretool.Missing(t, "no Debian trixie root: run .ci/trixie.sh (or set MIRRORD_TRIXIE_ROOT)")
	}
	if os.Geteuid() != 0 {
		requiretool.Missing(t, "running apt in the trixie root needs chroot, which needs root")
	}
	return filepath.Dir(roots[len(roots)-1])
}

// chrootApt is stock apt (>= 2.7) run inside the trixie root with every
// directory (state, cache, sources, keys) private to the test, below the
// root's /tmp.
type chrootApt struct {
	t    *testing.T
	root string // the chroot
	dir  string // the private directory, as seen inside the chroot
}

func newChrootApt(t *testing.T, root, sources, key string) *chrootApt {
	t.Helper()
	host, err := os.MkdirTemp(filepath.Join(root, "tmp"), "mirrord-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(host) })
	c := &chrootApt{t: t, root: root, dir: "/tmp/" + filepath.Base(host)}
	for _, d := range []string{"state/lists/partial", "cache/archives/partial", "etc/apt.conf.d", "etc/sources.list.d", "etc/preferences.d", "etc/trusted.gpg.d", "log", "work"} {
		os.MkdirAll(filepath.Join(host, d), 0o755)
	}
	os.WriteFile(filepath.Join(host, "state/status"), nil, 0o644)
	os.WriteFile(filepath.Join(host, "etc/sources.list"), nil, 0o644)
	os.WriteFile(filepath.Join(host, "etc/mirrord.asc"), []byte(key), 0o644)
	os.WriteFile(filepath.Join(host, "etc/sources.list.d/mirrord.sources"), []byte(strings.ReplaceAll(sources, "/etc/apt/keyrings/mirrord.asc", c.dir+"/etc/mirrord.asc")), 0o644)
	conf := fmt.Sprintf(`Dir::Etc::Main "/dev/null";
Dir::Etc::Parts "%[1]s/etc/apt.conf.d";
Dir::Etc::SourceList "%[1]s/etc/sources.list";
Dir::Etc::SourceParts "%[1]s/etc/sources.list.d";
Dir::Etc::Preferences "%[1]s/etc/preferences";
Dir::Etc::PreferencesParts "%[1]s/etc/preferences.d";
Dir::Etc::Trusted "%[1]s/etc/trusted.gpg";
Dir::Etc::TrustedParts "%[1]s/etc/trusted.gpg.d";
Dir::State "%[1]s/state";
Dir::State::status "%[1]s/state/status";
Dir::Cache "%[1]s/cache";
Dir::Log "%[1]s/log";
APT::Architecture "amd64";
APT::Sandbox::User "root";
Debug::NoLocking "true";
Acquire::Languages "none";
Acquire::Retries "0";
Acquire::http::Proxy "DIRECT";
`, c.dir)
	os.WriteFile(filepath.Join(host, "apt.conf"), []byte(conf), 0o644)
	return c
}

// run runs an apt command inside the chroot and returns its output.
func (c *chrootApt) run(args ...string) (string, error) {
	c.t.Helper()
	cmd := exec.Command("chroot", append([]string{c.root, "env", "APT_CONFIG=" + c.dir + "/apt.conf", "LC_ALL=C", "DEBIAN_FRONTEND=noninteractive",
		"sh", "-c", `cd "$0/work" && exec "$@"`, c.dir}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func (c *chrootApt) must(args ...string) string {
	c.t.Helper()
	out, err := c.run(args...)
	if err != nil {
		c.t.Fatalf("%v: %v\n%s", args, err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "W:") || strings.HasPrefix(line, "E:") || strings.HasPrefix(line, "Err:") {
			c.t.Fatalf("%v: %s\n%s", args, line, out)
		}
	}
	return out
}

// Stock apt >= 2.7 pins mirrord snapshots natively: with sources pointing
// at a channel, `apt update --snapshot ID` follows the Release's
// Snapshots: field to /snapshots/ID/..., installs that snapshot's
// versions, and a time between two snapshots gets the earlier one.
func TestAptNativeSnapshotOption(t *testing.T) {
	root := trixieRoot(t)
	out, _ := exec.Command("chroot", root, "apt", "--version").CombinedOutput()
	t.Logf("trixie root %s: %s", root, bytes.TrimSpace(out))

	up := demoUpstream(t, apttest.Package{Name: "hello", Version: "1.0-1"})
	addr := freePort(t)
	e := newAptEnv(t, up, addr, "")
	id1 := e.sync()
	time.Sleep(2 * time.Second) // the IDs are seconds: leave one between the snapshots
	hashes := map[string]string{"1.0-1": up.Deb(t, "hello", "1.0-1", "").SHA256}
	up.Remove("hello", "1.0-1")
	up.Add(t, apttest.Package{Name: "hello", Version: "2.0-1"})
	up.Publish(t)
	hashes["2.0-1"] = up.Deb(t, "hello", "2.0-1", "").SHA256
	id2 := e.sync()
	e.must("snapshot", "promote", id2, "production")
	base := e.serve(addr)
	_, key := get(t, base+"/keys/mirrord.asc", nil)
	sources := e.must("client-config", "--channel", "production")

	c := newChrootApt(t, root, sources, string(key))
	c.must("apt-get", "update")
	if v := candidate(t, c); v != "2.0-1" {
		t.Errorf("channel: candidate %s, want 2.0-1", v)
	}
	between, err := time.Parse("20060102T150405Z", id1)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ snapshot, want string }{
		{id1, "1.0-1"},
		{id2, "2.0-1"},
		{between.Add(time.Second).Format("20060102T150405Z"), "1.0-1"}, // after id1, before id2
	} {
		upd := c.must("apt", "update", "--snapshot", tt.snapshot)
		if !strings.Contains(upd, "/snapshots/"+tt.snapshot+"/apt/demo") {
			t.Errorf("apt update --snapshot %s did not fetch from /snapshots/%s/:\n%s", tt.snapshot, tt.snapshot, upd)
		}
		sim := c.must("apt-get", "install", "--simulate", "--snapshot", tt.snapshot, "hello")
		if m := regexp.MustCompile(`(?m)^Inst hello \((\S+) `).FindStringSubmatch(sim); m == nil || m[1] != tt.want {
			t.Errorf("--snapshot %s installs %v, want hello %s:\n%s", tt.snapshot, m, tt.want, sim)
		}
		c.must("apt-get", "download", "--snapshot", tt.snapshot, "hello")
		deb, err := os.ReadFile(filepath.Join(root, c.dir, "work", "hello_"+tt.want+"_amd64.deb"))
		if err != nil {
			t.Errorf("--snapshot %s: apt-get download: %v", tt.snapshot, err)
			continue
		}
		if shaHex(deb) != hashes[tt.want] {
			t.Errorf("--snapshot %s: downloaded hello %s differs from the upstream's", tt.snapshot, tt.want)
		}
	}
}

func candidate(t *testing.T, c *chrootApt) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\s*Candidate:\s*(\S+)`).FindStringSubmatch(c.must("apt-cache", "policy", "hello"))
	if m == nil {
		return "(none)"
	}
	return m[1]
}
