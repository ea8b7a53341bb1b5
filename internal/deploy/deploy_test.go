package deploy

import (
	"bytes"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mirrord/mirrord/internal/apt"
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/gitcache"
	"github.com/mirrord/mirrord/internal/requiretool"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/yum"
)

// cloudInitSchema runs `cloud-init schema --config-file` on data.
func cloudInitSchema(t *testing.T, data []byte) (string, error) {
	t.Helper()
	bin := requiretool.Path(t, "cloud-init")
	p := filepath.Join(t.TempDir(), "user-data")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "schema", "--config-file", p).CombinedOutput()
	return string(out), err
}

func TestUserDataPassesCloudInitSchema(t *testing.T) {
	mirror, err := Mirror{Sources: []byte("apt:\n  - name: debian\n    url: http://UPSTREAM/debian\n"), PackageURL: "http://files/mirrord.deb", ConsulJoin: "10.0.0.5"}.UserData()
	if err != nil {
		t.Fatal(err)
	}
	node, err := Node{BootstrapURL: "http://203.0.113.10:8080/channels/production/bootstrap.sh", CloneDir: "/srv/repos"}.UserData()
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"mirror": mirror, "node": node} {
		if !bytes.HasPrefix(data, []byte("#cloud-config\n")) {
			t.Errorf("%s user-data does not start with #cloud-config", name)
		}
		if out, err := cloudInitSchema(t, data); err != nil || !strings.Contains(out, "Valid cloud-config") {
			t.Errorf("%s user-data: cloud-init schema: %v\n%s\n%s", name, err, out, data)
		}
	}
	// The schema check can fail: a misspelt module key is refused.
	bad := bytes.Replace(node, []byte("runcmd:"), []byte("runcmd: 3\nwrite_files:"), 1)
	if out, err := cloudInitSchema(t, bad); err == nil {
		t.Errorf("cloud-init schema accepted broken user-data:\n%s", out)
	}
}

func TestUserDataRejectsUnquotableValues(t *testing.T) {
	if _, err := (Node{BootstrapURL: "http://x/'; rm -rf /", CloneDir: "/srv"}).UserData(); err == nil {
		t.Error("a quote in the bootstrap URL was accepted")
	}
	if _, err := (Mirror{Sources: []byte("apt: []\n"), Channel: "prod uction"}).UserData(); err == nil {
		t.Error("a bad channel name was accepted")
	}
	if _, err := (Mirror{}).UserData(); err == nil || !strings.Contains(err.Error(), "no sources") {
		t.Errorf("empty sources: %v", err)
	}
}

func TestSourcesOfDropsDeployKeys(t *testing.T) {
	in := "# mine\ndata_dir: ./data\nlisten: 127.0.0.1:8080\npublic_url: http://x\nauth: {token_file: t}\napt:\n  - name: a # first\n    url: http://u\nsync: {interval: 6h}\n"
	out, dropped, err := SourcesOf([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(dropped, ",") != "data_dir,listen,public_url,auth" {
		t.Errorf("dropped %v", dropped)
	}
	for _, want := range []string{"apt:", "name: a # first", "sync:"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("sources lack %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "data_dir") || strings.Contains(string(out), "public_url") {
		t.Errorf("deploy keys kept:\n%s", out)
	}
}

func TestNotify(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", "")
	if sent, err := Notify("READY=1"); sent || err != nil {
		t.Fatalf("without NOTIFY_SOCKET: sent=%v err=%v", sent, err)
	}
	t.Setenv("NOTIFY_SOCKET", sock)
	if sent, err := Notify("READY=1"); !sent || err != nil {
		t.Fatalf("sent=%v err=%v", sent, err)
	}
	buf := make([]byte, 64)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	t.Setenv("NOTIFY_SOCKET", filepath.Join(dir, "nobody"))
	if _, err := Notify("READY=1"); err == nil || !strings.Contains(err.Error(), "NOTIFY_SOCKET") {
		t.Errorf("a missing socket: %v", err)
	}
}

// testSources are one source of each kind with a client config.
func testSources(t *testing.T) []source.Source {
	t.Helper()
	a, err := apt.New(config.AptSource{Name: "debian", URL: "http://up/debian", Suites: []string{"bookworm"},
		Components: []string{"main"}, Architectures: []string{"amd64"}, Keyring: "/k.gpg"}, apt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	y, err := yum.New(yum.Options{Name: "base", URL: "http://up/el9/", GPGKey: "/k.asc", Verbatim: true})
	if err != nil {
		t.Fatal(err)
	}
	g, err := gitcache.New(gitcache.Repo{Name: "stdlib", URL: "https://forge/puppetlabs/puppetlabs-stdlib"}, gitcache.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return []source.Source{a, y, g}
}

func testRecord() *snapshot.Record {
	return &snapshot.Record{ID: "20260101T000000Z", Sources: []snapshot.SourceRecord{
		{Kind: "apt", Name: "debian"}, {Kind: "yum", Name: "base"},
		{Kind: "git", Name: "stdlib", Refs: map[string]string{"HEAD": "ref: refs/heads/main",
			"refs/heads/main": strings.Repeat("a", 40), "refs/tags/v1.0": strings.Repeat("b", 40)}},
	}}
}

// The script runs with --root against a mirror serving only the key: it
// writes every file once, a second run changes nothing, and a failing
// download stops it with the URL.
func TestBootstrapScriptWritesClientFiles(t *testing.T) {
	requiretool.Path(t, "curl")
	key := "-----BEGIN PGP PUBLIC KEY BLOCK-----\nxyz\n-----END PGP PUBLIC KEY BLOCK-----\n"
	var fail atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/keys/mirrord.asc" || fail.Load() {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(key))
	}))
	defer srv.Close()
	root := srv.URL + "/snapshots/20260101T000000Z"
	script, err := Bootstrap{Root: root, KeyURL: srv.URL + "/keys/mirrord.asc", Record: testRecord(), Sources: testSources(t), Version: "test"}.Script()
	if err != nil {
		t.Fatal(err)
	}
	sh := filepath.Join(t.TempDir(), "bootstrap.sh")
	os.WriteFile(sh, script, 0o644)
	if out, err := exec.Command("sh", "-n", sh).CombinedOutput(); err != nil {
		t.Fatalf("sh -n: %v\n%s", err, out)
	}
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		out, err := exec.Command("sh", append([]string{sh, "--root", dir}, args...)...).CombinedOutput()
		return string(out), err
	}
	out, err := run()
	if err != nil {
		t.Fatalf("bootstrap: %v\n%s", err, out)
	}
	files := map[string]string{
		"etc/apt/sources.list.d/mirrord-debian.sources": "URIs: " + root + "/apt/debian/",
		"etc/apt/keyrings/mirrord.asc":                  key,
		"etc/yum.repos.d/mirrord-base.repo":             "baseurl=" + root + "/yum/base/",
		"etc/mirrord/gitconfig":                         "[url \"" + root + "/git/stdlib.git\"]\n\tinsteadOf = https://forge/puppetlabs/puppetlabs-stdlib\n",
		"etc/gitconfig":                                 "[include]\n\tpath = /etc/mirrord/gitconfig\n",
	}
	for f, want := range files {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil || !strings.Contains(string(data), want) {
			t.Errorf("%s: %v: %q lacks %q", f, err, data, want)
		}
	}
	if strings.Contains(out, "unchanged") {
		t.Errorf("first run found files unchanged:\n%s", out)
	}
	out, err = run()
	if err != nil || strings.Contains(out, "wrote") || strings.Count(out, "unchanged") != len(files) {
		t.Errorf("second run: %v\n%s", err, out)
	}
	if data, _ := os.ReadFile(filepath.Join(dir, "etc/gitconfig")); strings.Count(string(data), "[include]") != 1 {
		t.Errorf("gitconfig includes twice:\n%s", data)
	}
	fail.Store(true)
	os.Remove(filepath.Join(dir, "etc/apt/keyrings/mirrord.asc"))
	if out, err := run(); err == nil || !strings.Contains(out, "/keys/mirrord.asc") {
		t.Errorf("a failing key download: %v\n%s", err, out)
	}
	if out, err := run("--bogus"); err == nil || !strings.Contains(out, "unknown argument") {
		t.Errorf("--bogus: %v\n%s", err, out)
	}
}

func TestCloneResolution(t *testing.T) {
	main, tag := strings.Repeat("a", 40), strings.Repeat("b", 40)
	refs := map[string]string{"HEAD": "ref: refs/heads/main", "refs/heads/main": main, "refs/tags/v1.0": tag}
	for _, tc := range []struct {
		meta             map[string]string
		dest, ref, mode  string
		want, errContain string
	}{
		{nil, "stdlib", "main", "branch", main, ""},
		{map[string]string{"ref": "v1.0", "dest": "modules/stdlib"}, "modules/stdlib", "v1.0", "detach", tag, ""},
		{map[string]string{"ref": "refs/heads/main"}, "stdlib", "main", "branch", main, ""},
		{map[string]string{"ref": "0123456789abcdef0123456789abcdef01234567"}, "stdlib", "0123456789abcdef0123456789abcdef01234567", "detach", "0123456789abcdef0123456789abcdef01234567", ""},
		{map[string]string{"ref": "nope"}, "", "", "", "", `ref "nope" is not in snapshot`},
		{map[string]string{"dest": "../escape"}, "", "", "", "", "not a clean relative path"},
	} {
		c, err := cloneOf("20260101T000000Z", &snapshot.SourceRecord{Kind: "git", Name: "stdlib", Refs: refs, Meta: tc.meta})
		if tc.errContain != "" {
			if err == nil || !strings.Contains(err.Error(), tc.errContain) {
				t.Errorf("%v: err %v, want %q", tc.meta, err, tc.errContain)
			}
			continue
		}
		if err != nil || c.Dest != tc.dest || c.Ref != tc.ref || c.Mode != tc.mode || c.Want != tc.want {
			t.Errorf("%v: %+v %v", tc.meta, c, err)
		}
	}
}
