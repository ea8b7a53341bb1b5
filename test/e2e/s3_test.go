package e2e

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/consul/consultest"
	"github.com/mirrord/mirrord/internal/requiretool"
	"github.com/mirrord/mirrord/internal/store/s3/s3test"
)

// s3Bucket is one prefix of a versitygw bucket that mirrord envs share.
type s3Bucket struct {
	srv    *s3test.Server
	bucket string
	prefix string
	secret string
}

func newS3Bucket(t *testing.T, srv *s3test.Server, bucket, prefix string) *s3Bucket {
	secret := filepath.Join(t.TempDir(), "s3.secret")
	if err := os.WriteFile(secret, []byte(s3test.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return &s3Bucket{srv: srv, bucket: srv.Bucket(bucket), prefix: prefix, secret: secret}
}

// yaml is the store and cache block of a config using the bucket.
func (b *s3Bucket) yaml(extra string) string {
	return fmt.Sprintf(`store:
  kind: s3
  endpoint: %s
  bucket: %s
  prefix: %s
  path_style: true
  access_key_id: %s
  secret_access_key_file: %s
%scache: {max_size: 64MiB}
`, b.srv.Endpoint(), b.bucket, b.prefix, s3test.AccessKey, b.secret, extra)
}

// blobs lists the blob objects in the bucket (the posix backend's files).
func (b *s3Bucket) blobs(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	root := filepath.Join(b.srv.Dir, b.bucket, b.prefix, "blobs", "sha256")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && len(d.Name()) == 64 {
			out[d.Name()] = true
		}
		return nil
	})
	return out
}

// s3AptClient is aptClient for a config with apt and yum sources: only
// client-config's deb822 stanzas go to apt.
func s3AptClient(t *testing.T, e *env, key, id string) *apttest.Client {
	t.Helper()
	cfg := e.must("client-config", "--snapshot", id)
	if i := strings.Index(cfg, "\n["); i >= 0 {
		cfg = cfg[:i+1] // the yum .repo stanzas follow
	}
	cfg = strings.ReplaceAll(cfg, "/etc/apt/keyrings/mirrord.asc", key)
	if !strings.Contains(cfg, "Types: deb") || !strings.Contains(cfg, "Signed-By: "+key) {
		t.Fatalf("client-config:\n%s", cfg)
	}
	return apttest.NewClient(t, "", "mirrord.sources", cfg)
}

// TestS3Store syncs the apt and yum fixtures into S3 on one mirrord and
// installs from another with its own, empty data_dir: the bucket holds
// everything. Then: blob redirects, an S3 outage, and the signing identity.
func TestS3Store(t *testing.T) {
	srv := s3test.Start(t)
	b := newS3Bucket(t, srv, "mirrord-e2e", "prod/")
	up := demoUpstream(t)
	yum := newYumUpstream(t)
	addrB := freePort(t)
	files := newUpstream(t)
	big := randBytes(42, 300<<10) // above the server's in-memory blob size: served from the read cache
	files.set("big.img", big)

	a := newEnv(t) // the syncing replica
	os.WriteFile(filepath.Join(a.dir, "token"), []byte("s3cret\n"), 0o600)
	seedSigningKey(t, filepath.Join(a.dir, "data", "signing", "mirrord.asc"))
	a.writeConfig(fmt.Sprintf(`data_dir: data
public_url: http://%s
auth: {token_file: token}
sync: {concurrency: 2, per_host: 4, retries: 1}
%sapt:
  - {name: demo, url: %s, suites: [stable], components: [main], architectures: [amd64], keyring: %s}
yum:
  - {name: base, url: %s, gpgkey: %s}
  - {name: subset, url: %s, gpgkey: %s, filter: [foo], filter_with_deps: true}
file:
  - {name: images, files: [{url: %s/big.img, path: big.img, sha256: %s}]}
`, addrB, b.yaml(""), up.URL, up.Key.Keyring, yum.BaseURL(), yum.fix.Signer.PublicKeyFile, yum.BaseURL(), yum.fix.Signer.PublicKeyFile,
		files.URL, sha(big)))
	id := a.sync()
	if n := len(a.blobs()); n != 0 {
		t.Errorf("the syncing replica keeps %d blobs in its data_dir; with s3 they belong in the bucket", n)
	}
	if n := len(b.blobs(t)); n < 10 {
		t.Fatalf("bucket holds %d blobs after a sync", n)
	}

	// Replica B: same bucket, a fresh data_dir, no sources, no signing key.
	rb := newEnv(t)
	rb.writeConfig(fmt.Sprintf("data_dir: data\npublic_url: http://%s\n%s", addrB, b.yaml("")))
	baseB := rb.serve(addrB)
	key := mirrordKey(t, baseB)
	if got, _ := os.ReadFile(key); !strings.Contains(string(got), "BEGIN PGP PUBLIC KEY BLOCK") {
		t.Fatalf("replica B serves no key")
	}
	if _, err := os.Stat(filepath.Join(rb.dir, "data", "signing", "mirrord.asc")); !os.IsNotExist(err) {
		t.Errorf("a serving replica generated a signing key: %v", err)
	}

	t.Run("apt-get", func(t *testing.T) {
		c := s3AptClient(t, a, key, id) // A's config names the sources
		c.Update()
		checkDebs(t, up.Debs(), c.Download("demo-app"), demoInstall...)
	})
	t.Run("dnf", func(t *testing.T) {
		requiretool.All(t, "dnf", "rpm")
		upKey := "file://" + yum.fix.Signer.PublicKeyFile
		for _, src := range []string{"base", "subset"} {
			root := t.TempDir()
			repos := writeRepo(t, repoStanza("mirror-"+src, baseB+"/snapshots/"+id+"/yum/"+src+"/", upKey, "file://"+key))
			mustDnf(t, root, repos, "install", "foo")
			if got := installed(t, root); !strings.Contains(got, "foo-1.0-1") || !strings.Contains(got, "baz-1.2-1") {
				t.Errorf("%s: installroot lacks foo or its dependencies:\n%s", src, got)
			}
		}
	})
	t.Run("http", func(t *testing.T) {
		deb := up.Debs()[0]
		u := baseB + "/snapshots/" + id + "/apt/demo/" + deb.Filename
		resp, body := get(t, u, nil)
		if resp.StatusCode != 200 || shaHex(body) != deb.SHA256 || resp.Header.Get("Etag") != `"`+deb.SHA256+`"` ||
			!strings.Contains(resp.Header.Get("Cache-Control"), "immutable") {
			t.Fatalf("GET %s: %d etag %q cache %q", u, resp.StatusCode, resp.Header.Get("Etag"), resp.Header.Get("Cache-Control"))
		}
		if resp, _ := get(t, u, map[string]string{"If-None-Match": `"` + deb.SHA256 + `"`}); resp.StatusCode != 304 {
			t.Errorf("conditional GET: %d, want 304", resp.StatusCode)
		}
		if resp, body := get(t, u, map[string]string{"Range": "bytes=10-19"}); resp.StatusCode != 206 || string(body) != string(deb.Data[10:20]) {
			t.Errorf("Range GET: %d %q", resp.StatusCode, body)
		}
		u = baseB + "/snapshots/" + id + "/file/images/big.img"
		if resp, body := get(t, u, nil); resp.StatusCode != 200 || sha(body) != sha(big) {
			t.Fatalf("GET %s: %d", u, resp.StatusCode)
		}
		cached := filepath.Join(rb.dir, "data", "cache", "blobs", sha(big)[:2], sha(big))
		if got, err := os.ReadFile(cached); err != nil || sha(got) != sha(big) {
			t.Errorf("big.img is not in replica B's read cache %s: %v", cached, err)
		}
		if resp, body := get(t, u, map[string]string{"Range": "bytes=200000-200009"}); resp.StatusCode != 206 || string(body) != string(big[200000:200010]) {
			t.Errorf("Range GET of a cached blob: %d", resp.StatusCode)
		}
	})
	t.Run("redirect", func(t *testing.T) {
		addrC := freePort(t)
		// C has A's sources but not the signing key: it serves, and
		// leaves syncing to A.
		rc := newEnv(t)
		cfg, _ := os.ReadFile(a.config)
		rc.writeConfig(strings.NewReplacer(addrB, addrC, b.yaml(""), b.yaml("  redirect: true\n")).Replace(string(cfg)))
		os.WriteFile(filepath.Join(rc.dir, "token"), []byte("s3cret\n"), 0o600)
		baseC := rc.serve(addrC)
		deb := up.Debs()[1]
		u := baseC + "/snapshots/" + id + "/apt/demo/" + deb.Filename
		resp, _ := get(t, u, nil)
		if loc := resp.Header.Get("Location"); resp.StatusCode != 302 || !strings.HasPrefix(loc, srv.Endpoint()+"/") || !strings.Contains(loc, "X-Amz-Signature=") {
			t.Fatalf("GET %s with redirect: %d Location %q; want a 302 to a presigned URL", u, resp.StatusCode, loc)
		}
		if resp, _ := get(t, u, map[string]string{"If-None-Match": `"` + deb.SHA256 + `"`}); resp.StatusCode != 304 {
			t.Errorf("conditional GET with redirect: %d, want 304", resp.StatusCode)
		}
		curl := requiretool.Path(t, "curl")
		out, err := exec.Command(curl, "-fsSL", u).Output()
		if err != nil || shaHex(out) != deb.SHA256 {
			t.Errorf("curl -L %s: %v, sha %s want %s", u, err, shaHex(out), deb.SHA256)
		}
		c := s3AptClient(t, rc, key, id)
		c.Update()
		checkDebs(t, up.Debs(), c.Download("demo-app"), demoInstall...)
		if _, err := exec.LookPath("dnf"); err == nil {
			root := t.TempDir()
			repos := writeRepo(t, repoStanza("mirror-base", baseC+"/snapshots/"+id+"/yum/base/", "file://"+yum.fix.Signer.PublicKeyFile))
			mustDnf(t, root, repos, "install", "foo")
			if got := installed(t, root); !strings.Contains(got, "foo-1.0-1") {
				t.Errorf("dnf through redirects: foo not installed:\n%s", got)
			}
		}
	})
	t.Run("outage", func(t *testing.T) {
		// B fetched demo-app's closure above: those blobs are cached.
		var hot, cold apttest.Deb
		for _, d := range up.Debs() {
			if d.Name == "demo-app" {
				hot = d
			}
			if !strings.Contains(strings.Join(demoInstall, " "), d.Name+" ") {
				cold = d
			}
		}
		if cold.Name == "" {
			t.Fatal("the demo has no package outside demo-app's closure")
		}
		srv.Stop()
		resp, body := get(t, baseB+"/snapshots/"+id+"/apt/demo/"+hot.Filename, nil)
		if resp.StatusCode != 200 || shaHex(body) != hot.SHA256 {
			t.Errorf("cached blob with S3 down: %d", resp.StatusCode)
		}
		resp, body = get(t, baseB+"/snapshots/"+id+"/apt/demo/"+cold.Filename, nil)
		if resp.StatusCode != 503 || !strings.Contains(string(body), "s3://"+b.bucket+"/") || !strings.Contains(string(body), srv.Endpoint()) {
			t.Errorf("uncached blob with S3 down: %d %s; want 503 naming the store", resp.StatusCode, body)
		}
		r := a.run("sync")
		if r.code == 0 || !strings.Contains(r.stderr, "store unavailable") || !strings.Contains(r.stderr, srv.Endpoint()) {
			t.Errorf("sync with S3 down: exit %d, stderr:\n%s", r.code, r.stderr)
		}
		srv.Start()
		resp, body = get(t, baseB+"/snapshots/"+id+"/apt/demo/"+cold.Filename, nil)
		if resp.StatusCode != 200 || shaHex(body) != cold.SHA256 {
			t.Errorf("blob after S3 is back: %d", resp.StatusCode)
		}
		a.sync()
	})
	t.Run("identity", func(t *testing.T) {
		// A second syncing replica with its own key is refused.
		other := newEnv(t)
		otherKey := filepath.Join(other.dir, "other.asc")
		cfg, _ := os.ReadFile(a.config)
		other.writeConfig(strings.Replace(string(cfg), "data_dir: data\n", "data_dir: data\nsigning: {key_file: "+otherKey+"}\n", 1))
		res := other.run("sync")
		if res.code == 0 || !strings.Contains(res.stderr, "does not exist") || !strings.Contains(res.stderr, "signed by key") {
			t.Errorf("sync without the store's key: exit %d\n%s", res.code, res.stderr)
		}
		if _, err := os.Stat(otherKey); !os.IsNotExist(err) {
			t.Errorf("a key was generated for a store that names one")
		}
	})
}

// TestS3KillDuringSync kill -9s syncs into S3 at random moments: another
// replica's verify stays clean, no partial snapshot is ever listed, and the
// next sync succeeds (the dead holder's lease is taken over at once).
func TestS3KillDuringSync(t *testing.T) {
	srv := s3test.Start(t)
	b := newS3Bucket(t, srv, "mirrord-kill", "")
	up := newUpstream(t)
	up.delay = 2 * time.Millisecond
	var files []fileSpec
	for i := range 16 {
		f := fileSpec{fmt.Sprintf("f%02d", i), randBytes(int64(100+i), 48<<10)}
		up.set(f.path, f.data)
		files = append(files, f)
	}
	e := newEnv(t)
	other := newEnv(t) // verifies from its own data_dir
	other.writeConfig("data_dir: data\n" + b.yaml(""))
	e.writeConfig(fileConfig(up.URL, files...) + b.yaml(""))
	start := time.Now()
	e.sync()
	span := time.Since(start)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	listed := 1
	for i := range 10 {
		for j := range files {
			files[j].data = randBytes(int64(1000*i+j), 48<<10)
			up.set(files[j].path, files[j].data)
		}
		e.writeConfig(fileConfig(up.URL, files...) + b.yaml(""))
		finished := killedSync(t, e, time.Duration(rng.Int63n(int64(span)*6/5)))
		if out := other.must("verify"); !strings.Contains(out, " 0 problems") {
			t.Fatalf("round %d: verify after kill -9: %s", i, out)
		}
		var list []struct{ ID string }
		json.Unmarshal([]byte(other.must("snapshot", "list", "--json")), &list)
		switch {
		case finished && len(list) != listed+1:
			t.Fatalf("round %d: sync finished but %d snapshots listed, want %d", i, len(list), listed+1)
		case len(list) < listed || len(list) > listed+1:
			t.Fatalf("round %d: %d snapshots listed after %d", i, len(list), listed)
		}
		listed = len(list)
	}
	id := e.sync()
	if out := other.must("verify", id); !strings.Contains(out, " 0 problems") {
		t.Fatalf("final verify: %s", out)
	}
}

// TestS3GC: gc deletes exactly the blobs no snapshot references. The
// reference is the same final config synced alone into another prefix.
func TestS3GC(t *testing.T) {
	srv := s3test.Start(t)
	gcB := newS3Bucket(t, srv, "mirrord-gc", "gc/")
	refB := newS3Bucket(t, srv, "mirrord-gc", "ref/")
	up := newUpstream(t)
	var files []fileSpec
	for i := range 4 {
		f := fileSpec{fmt.Sprintf("f%d", i), randBytes(int64(7+i), 10<<10)}
		up.set(f.path, f.data)
		files = append(files, f)
	}
	e := newEnv(t)
	e.writeConfig(fileConfig(up.URL, files[:3]...) + gcB.yaml(""))
	id1 := e.sync()
	e.writeConfig(fileConfig(up.URL, files[1:]...) + gcB.yaml(""))
	e.sync()
	before := gcB.blobs(t)
	e.must("snapshot", "delete", id1)
	out := e.must("gc", "--grace", "0s")

	ref := newEnv(t)
	ref.writeConfig(fileConfig(up.URL, files[1:]...) + refB.yaml(""))
	ref.sync()
	want, got := refB.blobs(t), gcB.blobs(t)
	if fmt.Sprint(want) != fmt.Sprint(got) {
		t.Errorf("after gc the bucket holds %d blobs, want exactly the %d the remaining snapshot references\ngot  %v\nwant %v", len(got), len(want), got, want)
	}
	if n := len(before) - len(got); n < 2 || !strings.Contains(out, fmt.Sprintf("%d ", n)) {
		t.Errorf("gc deleted %d blobs; its report:\n%s", n, out)
	}
	if out := e.must("verify"); !strings.Contains(out, " 0 problems") {
		t.Errorf("verify after gc: %s", out)
	}
}

// TestS3ConsulLocks: with consul: and an s3 store, the sync lock is a
// Consul lock (PREFIX/locks/sync) shared by every replica: while another
// holder has it, a sync is refused; once released, it runs.
func TestS3ConsulLocks(t *testing.T) {
	agent := consultest.Start(t, consultest.Options{})
	srv := s3test.Start(t)
	b := newS3Bucket(t, srv, "mirrord-consul", "")
	up := newUpstream(t)
	f := fileSpec{"a.bin", randBytes(5, 4096)}
	up.set(f.path, f.data)
	e := newEnv(t)
	e.writeConfig(fileConfig(up.URL, f) + b.yaml("") + fmt.Sprintf("consul: {address: %q, prefix: s3locks/}\n", agent.Addr))
	lock, err := agent.Client().LockKey("s3locks/locks/sync")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.Lock(nil); err != nil {
		t.Fatal(err)
	}
	r := e.run("sync")
	if r.code != 4 || !strings.Contains(r.stderr, "another sync") {
		t.Errorf("sync while another replica holds the Consul lock: exit %d\n%s", r.code, r.stderr)
	}
	if err := lock.Unlock(); err != nil {
		t.Fatal(err)
	}
	e.sync()
	if _, err := os.Stat(filepath.Join(srv.Dir, b.bucket, "locks")); !os.IsNotExist(err) {
		t.Errorf("lease objects in the bucket although Consul holds the locks: %v", err)
	}
}
