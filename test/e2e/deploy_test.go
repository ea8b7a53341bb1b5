package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/consul/consultest"
	"github.com/mirrord/mirrord/internal/gitcache/gittest"
	"github.com/mirrord/mirrord/internal/requiretool"
)

// testCache is where slow fixtures are kept between runs.
func testCache() string {
	if d := os.Getenv("MIRRORD_TEST_CACHE"); d != "" {
		return d
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "mirrord-test")
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		requiretool.Missing(t, "needs root (debootstrap, chroot, dpkg into a root)")
	}
}

// bookwormDebs is the directory of cached bookworm .debs that
// .ci/bookworm-debs.sh downloads ($MIRRORD_BOOKWORM_DEBS under CI).
func bookwormDebs(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("MIRRORD_BOOKWORM_DEBS"); d != "" {
		return d
	}
	out, err := exec.Command("../../.ci/bookworm-debs.sh").Output()
	if err != nil {
		requiretool.Missing(t, "no bookworm .debs: set MIRRORD_BOOKWORM_DEBS or run .ci/bookworm-debs.sh: "+err.Error())
	}
	return strings.TrimSpace(string(out))
}

func runCmd(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var epochRE = regexp.MustCompile(`_[0-9]+%3a`)

// debianUpstream publishes the .debs of dir as a signed bookworm archive
// (apt-ftparchive, gpg) served on 127.0.0.1; stop takes it down.
func debianUpstream(t *testing.T, debs string) (url, keyring string, stop func()) {
	t.Helper()
	requiretool.All(t, "apt-ftparchive", "gpg", "gzip")
	key := apttest.NewKey(t, "deploy upstream")
	dir := t.TempDir()
	pool := filepath.Join(dir, "pool", "main")
	os.MkdirAll(pool, 0o755)
	entries, err := os.ReadDir(debs)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".deb") {
			// Like Debian's pool: no epoch in the file name (debootstrap
			// keeps it, %-encoded, in what it downloaded).
			name := epochRE.ReplaceAllString(e.Name(), "_")
			if err := os.Symlink(filepath.Join(debs, e.Name()), filepath.Join(pool, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	dist := filepath.Join(dir, "dists", "bookworm")
	bin := filepath.Join(dist, "main", "binary-amd64")
	os.MkdirAll(bin, 0o755)
	pk := runCmd(t, dir, nil, "apt-ftparchive", "packages", "pool/main")
	os.WriteFile(filepath.Join(bin, "Packages"), []byte(pk), 0o644)
	runCmd(t, bin, nil, "gzip", "-k9n", "Packages")
	rel := runCmd(t, dir, nil, "apt-ftparchive", "-o", "APT::FTPArchive::Release::Origin=Debian", "-o", "APT::FTPArchive::Release::Suite=bookworm",
		"-o", "APT::FTPArchive::Release::Codename=bookworm", "-o", "APT::FTPArchive::Release::Architectures=amd64",
		"-o", "APT::FTPArchive::Release::Components=main", "release", "dists/bookworm")
	os.WriteFile(filepath.Join(dist, "Release"), []byte(rel), 0o644)
	gpg := []string{"--homedir", key.Home, "--batch", "--yes", "-u", key.Fingerprint}
	runCmd(t, dist, nil, "gpg", append(gpg, "--clearsign", "-o", "InRelease", "Release")...)
	runCmd(t, dist, nil, "gpg", append(gpg, "--armor", "--detach-sign", "-o", "Release.gpg", "Release")...)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	t.Cleanup(srv.Close)
	return srv.URL, key.Keyring, srv.Close
}

// deployFixture is a mirrord serving one snapshot (channel production) of
// a bookworm archive, a yum repository and two git repositories, with
// every upstream stopped.
type deployFixture struct {
	e          *env
	base, id   string
	stdlib, am *gittest.Upstream
	refs       map[string]map[string]string // git source → recorded refs
}

func newDeployFixture(t *testing.T) *deployFixture {
	t.Helper()
	requiretool.All(t, "git", "curl")
	debURL, debKey, stopDeb := debianUpstream(t, bookwormDebs(t))
	yum := newYumUpstream(t)
	gsrv := gittest.NewServer(t)
	f := &deployFixture{
		stdlib: gsrv.NewRepo(t, "puppetlabs/puppetlabs-stdlib.git"),
		am:     gsrv.NewRepo(t, "puppetlabs/puppetlabs-apt.git"),
	}
	gittest.Populate(t, f.stdlib, 30)
	gittest.Populate(t, f.am, 20)

	e := newEnv(t)
	f.e = e
	os.WriteFile(filepath.Join(e.dir, "token"), []byte("s3cret\n"), 0o600)
	seedSigningKey(t, filepath.Join(e.dir, "data", "signing", "mirrord.asc"))
	addr := freePort(t)
	e.writeConfig(fmt.Sprintf(`data_dir: data
public_url: http://%s
auth: {token_file: token}
sync: {retries: 1}
apt:
  - name: debian
    url: %s
    suites: [bookworm]
    components: [main]
    architectures: [amd64]
    keyring: %s
yum:
  - name: base
    url: %s
    gpgkey: %s
git:
  repos:
    - {name: stdlib, url: %s}
    - {name: puppet-apt, url: %s, dest: modules/apt, ref: v1.0}
`, addr, debURL, debKey, yum.BaseURL(), yum.fix.Signer.PublicKeyFile, f.stdlib.URL, f.am.URL))
	f.id = e.sync()
	// puppet-apt's entry names a tag and a dest (recorded as the git
	// source's Meta dest and ref); stdlib has neither: its dest is its
	// name, its ref HEAD's branch.
	f.refs = map[string]map[string]string{
		"stdlib": e.gitSource(f.id, "stdlib").Refs, "puppet-apt": e.gitSource(f.id, "puppet-apt").Refs,
	}
	e.must("snapshot", "promote", f.id, "production")
	f.base = e.serve(addr)
	stopDeb()
	yum.down.Store(true)
	gsrv.Stop()
	return f
}

// commitOf peels a recorded ref value (tag object or commit) in a clone.
func commitOf(t *testing.T, dir, id string) string {
	return strings.TrimSpace(gittest.Git(t, dir, "rev-parse", id+"^{commit}"))
}

// nodeRoot returns a fresh copy of a bookworm root debootstrapped from the
// fixture's snapshot (minbase, curl, git, procps, systemd). The first run debootstraps and
// caches it under testCache(), keyed by the .deb set.
func nodeRoot(t *testing.T, fixture func() *deployFixture) string {
	t.Helper()
	needRoot(t)
	requiretool.All(t, "debootstrap", "chroot", "gpg")
	entries, _ := os.ReadDir(bookwormDebs(t))
	h := sha256.New()
	for _, e := range entries {
		fmt.Fprintln(h, e.Name())
	}
	cached := filepath.Join(testCache(), "deploy-node-root-"+hex.EncodeToString(h.Sum(nil))[:16], "root")
	if _, err := os.Stat(filepath.Join(cached, ".complete")); err != nil {
		debootstrapRoot(t, fixture(), cached)
	}
	dst := filepath.Join(t.TempDir(), "root")
	runCmd(t, "", nil, "cp", "-a", cached, dst)
	return dst
}

func debootstrapRoot(t *testing.T, f *deployFixture, dst string) {
	t.Helper()
	_, key := get(t, f.base+"/keys/mirrord.asc", nil)
	asc := filepath.Join(t.TempDir(), "mirrord.asc")
	os.WriteFile(asc, key, 0o644)
	keyring := filepath.Join(t.TempDir(), "mirrord.gpg")
	runCmd(t, "", nil, "gpg", "--batch", "--yes", "--dearmor", "-o", keyring, asc)
	work := dst + ".build"
	os.RemoveAll(work)
	os.MkdirAll(filepath.Dir(dst), 0o755)
	url := f.base + "/snapshots/" + f.id + "/apt/debian"
	runCmd(t, "", nil, "debootstrap", "--variant=minbase", "--include=curl,git,ca-certificates,procps,systemd", "--keyring="+keyring, "bookworm", work, url)
	// The node's own sources are not the mirror: bootstrap.sh adds it.
	os.WriteFile(filepath.Join(work, "etc", "apt", "sources.list"), nil, 0o644)
	os.WriteFile(filepath.Join(work, ".complete"), nil, 0o644)
	if err := os.Rename(work, dst); err != nil {
		t.Fatal(err)
	}
}

func chroot(t *testing.T, root, script string) (string, error) {
	t.Helper()
	cmd := exec.Command("chroot", root, "/bin/sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LC_ALL=C.UTF-8", "DEBIAN_FRONTEND=noninteractive"}
	// A daemon the script leaves running must not keep the output open.
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func mustChroot(t *testing.T, root, script string) string {
	t.Helper()
	out, err := chroot(t, root, script)
	if err != nil {
		t.Fatalf("chroot %s: %s: %v\n%s", root, script, err, out)
	}
	return out
}

// A node made by debootstrap from a mirrord snapshot, every upstream
// stopped: bootstrap.sh (fetched inside the node) configures apt and git,
// apt-get installs from the mirror, --clone checks out every git source at
// its ref, git's insteadOf sends upstream URLs to the mirror, and a second
// run changes nothing. The same script sets up a dnf installroot.
func TestDeployNodeBootstrap(t *testing.T) {
	needRoot(t)
	f := newDeployFixture(t)
	root := nodeRoot(t, func() *deployFixture { return f })
	chURL := f.base + "/channels/production/bootstrap.sh"

	// The served script is client-config --format sh's.
	_, served := get(t, f.base+"/snapshots/"+f.id+"/bootstrap.sh", nil)
	if printed := f.e.must("client-config", "--snapshot", f.id, "--format", "sh"); printed != string(served) {
		t.Errorf("client-config --format sh differs from the served bootstrap.sh")
	}

	// The node's user-data, as `mirrord cloud-init node` renders it: its
	// runcmd runs inside the node.
	var ud struct{ Runcmd []string }
	if err := yaml.Unmarshal([]byte(f.e.must("cloud-init", "node", "--channel", "production", "--mirror", f.base)), &ud); err != nil || len(ud.Runcmd) != 1 {
		t.Fatalf("cloud-init node: %v %v", ud, err)
	}
	out := mustChroot(t, root, ud.Runcmd[0])
	for _, want := range []string{"wrote /etc/apt/sources.list.d/mirrord-debian.sources", "wrote /etc/apt/keyrings/mirrord.asc",
		"wrote /etc/mirrord/gitconfig", "cloned git/stdlib into /srv/repos/stdlib at main", "cloned git/puppet-apt into /srv/repos/modules/apt at v1.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("bootstrap output lacks %q:\n%s", want, out)
		}
	}
	mustChroot(t, root, "apt-get update -q && apt-get install -y -q hello")
	if got := mustChroot(t, root, "hello"); !strings.Contains(got, "Hello, world!") {
		t.Errorf("hello from the mirror: %q", got)
	}
	// Each checkout is at the commit the snapshot records for its ref.
	for _, c := range []struct{ dir, src, ref string }{
		{"srv/repos/stdlib", "stdlib", "refs/heads/main"}, {"srv/repos/modules/apt", "puppet-apt", "refs/tags/v1.0"},
	} {
		dir := filepath.Join(root, c.dir)
		if head, want := commitOf(t, dir, "HEAD"), commitOf(t, dir, f.refs[c.src][c.ref]); head != want {
			t.Errorf("%s: HEAD %s, snapshot has %s at %s", c.dir, head, c.ref, want)
		}
		if origin := strings.TrimSpace(gittest.Git(t, dir, "remote", "get-url", "origin")); origin != f.base+"/channels/production/git/"+c.src+".git" {
			t.Errorf("%s: origin %s is not the mirror", c.dir, origin)
		}
	}
	// insteadOf: the (stopped) upstream URL reaches the mirror.
	ls := mustChroot(t, root, "git ls-remote "+f.stdlib.URL)
	if !strings.Contains(ls, f.refs["stdlib"]["refs/heads/main"]+"\trefs/heads/main") {
		t.Errorf("git ls-remote %s through insteadOf:\n%s", f.stdlib.URL, ls)
	}
	again := mustChroot(t, root, "curl -fsS "+chURL+" | sh -s -- --clone /srv/repos")
	if strings.Contains(again, "wrote ") || !strings.Contains(again, "unchanged /etc/apt/sources.list.d/mirrord-debian.sources") {
		t.Errorf("a second run changed files:\n%s", again)
	}
	// Fails loudly: a clone directory that is not a repository.
	os.MkdirAll(filepath.Join(root, "srv/bad/stdlib/junk"), 0o755)
	if out, err := chroot(t, root, "curl -fsS "+chURL+" | sh -s -- --clone /srv/bad"); err == nil || !strings.Contains(out, "git clone") {
		t.Errorf("clone into a non-empty directory: %v\n%s", err, out)
	}

	t.Run("dnf", func(t *testing.T) {
		yroot := t.TempDir()
		sh := filepath.Join(t.TempDir(), "bootstrap.sh")
		os.WriteFile(sh, served, 0o644)
		out := runCmd(t, "", nil, "sh", sh, "--root", yroot)
		if !strings.Contains(out, "wrote "+yroot+"/etc/yum.repos.d/mirrord-base.repo") {
			t.Fatalf("bootstrap --root:\n%s", out)
		}
		repo, _ := os.ReadFile(filepath.Join(yroot, "etc/yum.repos.d/mirrord-base.repo"))
		if !strings.Contains(string(repo), "gpgkey="+f.base+"/snapshots/"+f.id+"/yum/base/") {
			t.Errorf(".repo:\n%s", repo)
		}
		mustDnf(t, yroot, filepath.Join(yroot, "etc/yum.repos.d"), "install", "foo")
		if got := installed(t, yroot); !strings.Contains(got, "foo-1.0-1") {
			t.Errorf("dnf --installroot from the bootstrap's .repo: installed\n%s", got)
		}
	})
}

// The packages `make deb` and `make rpm` build, once per test binary.
var (
	pkgOnce    sync.Once
	pkgDeb     string
	pkgRPM     string
	pkgErr     error
	pkgVersion = "0.0.1" // a fixed version: each run overwrites the same dist/ files
)

func packages(t *testing.T) (deb, rpm string) {
	t.Helper()
	requiretool.All(t, "make", "dpkg-deb", "rpm")
	pkgOnce.Do(func() {
		cmd := exec.Command("make", "-C", "../..", "deb", "rpm", "PKG_VERSION="+pkgVersion)
		out, err := cmd.CombinedOutput()
		if err != nil {
			pkgErr = fmt.Errorf("make deb rpm: %v\n%s", err, out)
			return
		}
		pkgDeb, _ = filepath.Abs("../../dist/mirrord_" + pkgVersion + "_amd64.deb")
		pkgRPM, _ = filepath.Abs("../../dist/mirrord-" + pkgVersion + ".x86_64.rpm")
	})
	if pkgErr != nil {
		t.Fatal(pkgErr)
	}
	return pkgDeb, pkgRPM
}

// make deb / make rpm: the packages install (dpkg -i into a bookworm root,
// rpm -i --root), create the mirrord user, and the installed binary runs;
// systemd-analyze verify finds nothing to say about the installed unit.
func TestDeployPackages(t *testing.T) {
	needRoot(t)
	deb, rpmFile := packages(t)
	root := nodeRoot(t, func() *deployFixture { return newDeployFixture(t) })
	os.WriteFile(filepath.Join(root, "tmp", "mirrord.deb"), mustRead(t, deb), 0o644)
	mustChroot(t, root, "dpkg -i /tmp/mirrord.deb")
	if got := mustChroot(t, root, "mirrord version"); !strings.Contains(got, pkgVersion) {
		t.Errorf("installed mirrord version: %q, want %s", got, pkgVersion)
	}
	if got := mustChroot(t, root, "getent passwd mirrord; stat -c '%U:%G %a' /var/lib/mirrord /etc/mirrord /etc/mirrord/mirrord.yaml"); !strings.Contains(got, "mirrord:x:") ||
		!strings.Contains(got, "mirrord:mirrord 750") || !strings.Contains(got, "root:mirrord 640") {
		t.Errorf("user and directories:\n%s", got)
	}
	// The default config is valid: mirrord reads it as the mirrord user.
	mustChroot(t, root, "runuser -u mirrord -- mirrord --config /etc/mirrord/mirrord.yaml snapshot list")
	analyze := requiretool.Path(t, "systemd-analyze")
	out, err := exec.Command(analyze, "verify", "--root="+root, "/usr/lib/systemd/system/mirrord.service").CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Reinstalling keeps the operator's config.
	mustChroot(t, root, "echo '# mine' >> /etc/mirrord/mirrord.yaml && dpkg -i --force-confold /tmp/mirrord.deb")
	if cfg := mustChroot(t, root, "cat /etc/mirrord/mirrord.yaml"); !strings.Contains(cfg, "# mine") {
		t.Error("reinstalling replaced the edited config")
	}

	rroot := t.TempDir()
	runCmd(t, "", nil, "rpm", "--root", rroot, "-i", "--nodeps", "--noscripts", rpmFile)
	if got := runCmd(t, "", nil, filepath.Join(rroot, "usr/bin/mirrord"), "version"); !strings.Contains(got, pkgVersion) {
		t.Errorf("rpm-installed mirrord version: %q", got)
	}
	scripts := runCmd(t, "", nil, "rpm", "-qp", "--scripts", rpmFile)
	if !strings.Contains(scripts, "useradd --system") {
		t.Errorf("rpm scripts lack the user creation:\n%s", scripts)
	}
	if files := runCmd(t, "", nil, "rpm", "-qpl", rpmFile); !strings.Contains(files, "/usr/lib/systemd/system/mirrord.service") || !strings.Contains(files, "/etc/mirrord/mirrord.yaml") {
		t.Errorf("rpm files:\n%s", files)
	}
}

// The mirror user-data of `mirrord cloud-init mirror` for real: its files
// written into a bookworm root and its runcmd run there (chroot, no
// systemd) against the built .deb, ending with the first snapshot served
// on the channel; a second run syncs nothing.
func TestDeployMirrorUserData(t *testing.T) {
	needRoot(t)
	deb, _ := packages(t)
	root := nodeRoot(t, func() *deployFixture { return newDeployFixture(t) })
	os.WriteFile(filepath.Join(root, "tmp", "mirrord.deb"), mustRead(t, deb), 0o644)

	up := newUpstream(t)
	content := []byte("cirros image bytes\n")
	up.set("cirros.img", content)
	src := filepath.Join(t.TempDir(), "sources.yaml")
	os.WriteFile(src, []byte(fmt.Sprintf("data_dir: ./local\nlisten: 127.0.0.1:1\nfile:\n  - name: images\n    files: [{url: %s/cirros.img, sha256: %s}]\n", up.URL, sha(content))), 0o644)
	dev := chrootVolume(t, root)
	agent := consultest.Start(t, consultest.Options{})
	addr := freePort(t)
	cmd := exec.Command(mirrordBin, "--config", src, "cloud-init", "mirror", "--package-url", "file:///tmp/mirrord.deb",
		"--listen", addr, "--public-url", "http://"+addr, "--channel", "production", "--device", dev, "--consul-join", agent.Addr)
	ud, err := cmd.Output()
	if err != nil {
		t.Fatalf("cloud-init mirror: %v", err)
	}
	var cc struct {
		WriteFiles []struct{ Path, Permissions, Content string } `yaml:"write_files"`
		Runcmd     [][]string                                    `yaml:"runcmd"`
	}
	if err := yaml.Unmarshal(ud, &cc); err != nil {
		t.Fatal(err)
	}
	for _, wf := range cc.WriteFiles {
		p := filepath.Join(root, wf.Path)
		os.MkdirAll(filepath.Dir(p), 0o755)
		mode, _ := strconv.ParseUint(wf.Permissions, 8, 32)
		if err := os.WriteFile(p, []byte(wf.Content), os.FileMode(mode)); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { stopChrootServe(root) }) // before the volume is unmounted
	if len(cc.Runcmd) != 1 {
		t.Fatalf("runcmd: %v", cc.Runcmd)
	}
	run := strings.Join(cc.Runcmd[0], " ")
	out := mustChroot(t, root, run)
	for _, want := range []string{"formatting the empty volume " + dev, "added /var/lib/mirrord to /etc/fstab", "generated the API token", "first sync", "is channel production"} {
		if !strings.Contains(out, want) {
			t.Errorf("set-up output lacks %q:\n%s", want, out)
		}
	}
	mirror := "http://" + addr
	resp, body := get(t, mirror+"/channels/production/file/images/cirros.img", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, content) {
		log, _ := os.ReadFile(filepath.Join(root, "var/log/mirrord.log"))
		t.Fatalf("the mirror's channel serves %d %q\nset-up:\n%s\nmirrord.log:\n%s", resp.StatusCode, body, out, log)
	}
	if _, s := get(t, mirror+"/channels/production/bootstrap.sh", nil); !bytes.HasPrefix(s, []byte("#!/bin/sh\n")) {
		t.Errorf("bootstrap.sh: %q", s)
	}
	// Joined Consul: the channel's pin is in KV and the replica in the catalog.
	m := regexp.MustCompile(`snapshot (\d{8}T\d{6}Z) is channel production`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no snapshot ID in the set-up output:\n%s", out)
	}
	if _, pin := get(t, agent.URL()+"/v1/kv/mirrord/channels/production?raw", nil); string(pin) != m[1] {
		t.Errorf("Consul KV mirrord/channels/production = %q, want %s", pin, m[1])
	}
	if _, svc := get(t, agent.URL()+"/v1/catalog/service/mirrord", nil); !strings.Contains(string(svc), `"ServiceName": "mirrord"`) || !strings.Contains(string(svc), `"Port": `+addr[strings.LastIndex(addr, ":")+1:]) {
		t.Errorf("mirrord is not in the Consul catalog: %s", svc)
	}
	tok := strings.TrimSpace(mustChroot(t, root, "cat /etc/mirrord/token"))
	if len(tok) != 64 {
		t.Errorf("generated token %q", tok)
	}
	uuid := mustChroot(t, root, "blkid -p -o value -s UUID "+dev)
	if mounts := mustChroot(t, root, "cat /proc/self/mounts"); !strings.Contains(mounts, dev+" /var/lib/mirrord ext4") {
		t.Errorf("the volume is not mounted at /var/lib/mirrord:\n%s\nset-up:\n%s", mounts, out)
	}
	again := mustChroot(t, root, run)
	if !strings.Contains(again, dev+" holds ext4: keeping it") || strings.Contains(again, "formatting") ||
		mustChroot(t, root, "blkid -p -o value -s UUID "+dev) != uuid {
		t.Errorf("the second run touched the volume:\n%s", again)
	}
	if fstab := mustChroot(t, root, "cat /etc/fstab"); strings.Count(fstab, "/var/lib/mirrord") != 1 {
		t.Errorf("fstab:\n%s", fstab)
	}
	if !strings.Contains(again, "channel production exists: no first sync") || !strings.Contains(again, "mirrord serve runs") {
		t.Errorf("second run:\n%s", again)
	}
	if tok2 := strings.TrimSpace(mustChroot(t, root, "cat /etc/mirrord/token")); tok2 != tok {
		t.Error("the second run replaced the token")
	}
	var snaps []json.RawMessage
	_, list := get(t, mirror+"/api/v1/snapshots", nil)
	json.Unmarshal(list, &snaps)
	if len(snaps) != 1 {
		t.Errorf("%d snapshots after two runs, want 1: %s", len(snaps), list)
	}
}

// chrootVolume gives root a loop device to use as the mirror's data
// volume, with /proc and /dev mounted in root; everything is unmounted
// and detached when t ends (after the set-up's mirrord serve is stopped).
func chrootVolume(t *testing.T, root string) string {
	t.Helper()
	requiretool.All(t, "losetup", "mount", "umount")
	img := filepath.Join(t.TempDir(), "volume.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("losetup", "--find", "--show", img).CombinedOutput()
	if err != nil {
		requiretool.Missing(t, "no loop device for the data volume (losetup): "+strings.TrimSpace(string(out)))
	}
	dev := strings.TrimSpace(string(out))
	t.Cleanup(func() { exec.Command("losetup", "-d", dev).Run() })
	for _, m := range []struct {
		target string
		args   []string
	}{
		{"proc", []string{"-t", "proc", "proc"}}, {"dev", []string{"--bind", "/dev"}},
	} {
		target := filepath.Join(root, m.target)
		if out, err := exec.Command("mount", append(m.args, target)...).CombinedOutput(); err != nil {
			requiretool.Missing(t, "cannot mount "+target+" for the chroot: "+string(out))
		}
		t.Cleanup(func() { exec.Command("umount", "-l", target).Run() })
	}
	t.Cleanup(func() { exec.Command("umount", "-l", filepath.Join(root, "var/lib/mirrord")).Run() })
	return dev
}

// stopChrootServe stops the `mirrord serve` the set-up script started in
// the background (its pid file is in the root).
func stopChrootServe(root string) {
	data, err := os.ReadFile(filepath.Join(root, "run", "mirrord.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 1 {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil && syscall.Kill(pid, 0) == nil {
		time.Sleep(50 * time.Millisecond)
	}
}

// Under a Type=notify unit, serve tells systemd READY=1 over
// $NOTIFY_SOCKET once it listens.
func TestServeNotifiesReady(t *testing.T) {
	e := newEnv(t)
	e.writeConfig("data_dir: data\n")
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	base := e.serve(freePort(t))
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 256)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("notification %q, %v", buf[:n], err)
	}
	if resp, _ := get(t, base+"/healthz", nil); resp.StatusCode != 200 {
		t.Errorf("healthz after READY: %d", resp.StatusCode)
	}
}
