package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/consul/consultest"
	"github.com/mirrord/mirrord/internal/gitcache/gittest"
	"github.com/mirrord/mirrord/internal/requiretool"
	"github.com/mirrord/mirrord/internal/store/s3/s3test"
)

// TestReplicasShareABucket is scale-out end to end: two replicas with
// their own data_dirs share one S3 bucket (versitygw) and one Consul
// agent. A syncs apt, yum and git; A stops and its data_dir is deleted;
// B alone installs with apt-get and dnf, clones git (fsck clean), syncs
// again, and serves an incremental git fetch of only the new objects.
// Then both serve with a schedule: the leader is killed mid-sync, the
// other takes the schedule over, and the interrupted sync left nothing
// visible.
func TestReplicasShareABucket(t *testing.T) {
	requiretool.All(t, "git")
	agent := consultest.Start(t, consultest.Options{})
	srv := s3test.Start(t)
	b := newS3Bucket(t, srv, "mirrord-replicas", "")
	up := demoUpstream(t)
	yum := newYumUpstream(t)
	forge := gittest.NewServer(t)
	stdlib := forge.NewRepo(t, "puppetlabs/puppetlabs-stdlib.git")
	gittest.Populate(t, stdlib, 30)
	slow := newUpstream(t) // the file a scheduled sync spends its time on
	big := randBytes(7, 2<<20)
	slow.set("big.img", big)

	config := func(e *env, interval string, files string) {
		t.Helper()
		os.WriteFile(filepath.Join(e.dir, "token"), []byte("s3cret\n"), 0o600)
		os.WriteFile(filepath.Join(e.dir, "repos.yaml"), []byte("puppetlabs:\n  author: puppetlabs\n  stdlib:\n    source: \""+stdlib.URL+"\"\n    dest: modules/stdlib\n"), 0o644)
		seedSigningKey(t, filepath.Join(e.dir, "data", "signing", "mirrord.asc"))
		sync := "sync: {concurrency: 4, retries: 1}\n"
		if interval != "" {
			sync = "sync: {concurrency: 4, retries: 0, interval: " + interval + "}\n"
		}
		e.writeConfig(fmt.Sprintf(`data_dir: data
signing: {key_file: data/signing/mirrord.asc}
auth: {token_file: token}
%s%sconsul: {address: %q, prefix: replicas/, service: mirrord-replicas}
apt:
  - {name: demo, url: %s, suites: [stable], components: [main], architectures: [amd64], keyring: %s}
yum:
  - {name: base, url: %s, gpgkey: %s}
git:
  repos_file: repos.yaml
%s`, sync, b.yaml(""), agent.Addr, up.URL, up.Key.Keyring, yum.BaseURL(), yum.fix.Signer.PublicKeyFile, files))
	}
	a, rb := newEnv(t), newEnv(t)
	config(a, "", "")
	config(rb, "", "")
	id1 := a.sync()
	rec1 := a.gitSource(id1, "stdlib")
	a.must("snapshot", "promote", id1, "production")
	if err := os.RemoveAll(filepath.Join(a.dir, "data")); err != nil {
		t.Fatal(err)
	}

	// B has never synced; everything it serves comes from the bucket.
	repB := startReplica(t, rb, "mirrord-replicas")
	key := mirrordKey(t, repB.base)
	t.Run("apt-get", func(t *testing.T) {
		c := apttest.NewClient(t, "", "mirrord.sources", "Types: deb\nURIs: "+repB.base+"/channels/production/apt/demo/\nSuites: stable\nComponents: main\nArchitectures: amd64\nSigned-By: "+key+"\n")
		c.Update()
		checkDebs(t, up.Debs(), c.Download("demo-app"), demoInstall...)
	})
	t.Run("dnf", func(t *testing.T) {
		requiretool.All(t, "dnf", "rpm")
		root := t.TempDir()
		repos := writeRepo(t, repoStanza("mirror-base", repB.base+"/channels/production/yum/base/", "file://"+yum.fix.Signer.PublicKeyFile))
		mustDnf(t, root, repos, "install", "foo")
		if got := installed(t, root); !strings.Contains(got, "foo-1.0-1") {
			t.Errorf("dnf from replica B: foo not installed:\n%s", got)
		}
	})
	mirror := filepath.Join(t.TempDir(), "stdlib.git")
	gittest.Git(t, "", "clone", "--quiet", "--mirror", repB.base+"/snapshots/"+id1+"/git/stdlib.git", mirror)
	gittest.Git(t, mirror, "fsck", "--strict")
	for ref, want := range rec1.Refs {
		if ref == "HEAD" {
			continue
		}
		if got := strings.TrimSpace(gittest.Git(t, mirror, "rev-parse", ref)); got != want {
			t.Errorf("clone from B: %s = %s, want %s", ref, got, want)
		}
	}

	// A second sync, from B: the git part adds one pack of what is new,
	// and a fetch from B receives exactly those objects.
	gittest.Advance(t, stdlib, 25)
	id2 := rb.sync()
	rec2 := rb.gitSource(id2, "stdlib")
	before := looseObjects(t, mirror)
	gittest.Git(t, mirror, "-c", "fetch.unpackLimit=1000000", "-c", "transfer.unpackLimit=1000000",
		"fetch", "--quiet", "--force", repB.base+"/snapshots/"+id2+"/git/stdlib.git", "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
	gittest.Git(t, mirror, "fsck", "--strict")
	if received, want := looseObjects(t, mirror)-before, newObjects(t, stdlib.Dir, rec2.Refs, rec1.Refs); received != want {
		t.Errorf("incremental fetch from B received %d objects, want exactly the %d new ones", received, want)
	}
	repB.stop()

	// Both serve with a schedule. The upstream file is slow, so the
	// leader's sync is still running when it is killed.
	setDelay := func(d time.Duration) { slow.mu.Lock(); slow.delay = d; slow.mu.Unlock() }
	setDelay(20 * time.Millisecond) // per 4 KiB: about 10 s for the file
	files := fmt.Sprintf("file:\n  - {name: images, files: [{url: %s/big.img, path: big.img, sha256: %s}]}\n", slow.URL, sha(big))
	config(a, "1s", files)
	config(rb, "1s", files)
	reps := []*replica{startReplica(t, a, "mirrord-replicas"), startReplica(t, rb, "mirrord-replicas")}
	kv := agent.Client().KV()
	holder := func() *replica {
		p, _, err := kv.Get("replicas/leader", nil)
		if err != nil || p == nil || p.Session == "" {
			return nil
		}
		for _, r := range reps {
			if string(p.Value) == r.id {
				return r
			}
		}
		return nil
	}
	var leader *replica
	waitFor(t, "a leader downloading the slow file", 60*time.Second, func() bool {
		leader = holder()
		return leader != nil && slow.requests.Load() > 0 && strings.Contains(leader.out.String(), "task started")
	})
	other := reps[0]
	if other == leader {
		other = reps[1]
	}
	snaps := snapshotIDs(t, rb)
	leader.kill()
	// Nothing the killed sync wrote is visible: no new snapshot yet.
	if now := snapshotIDs(t, rb); len(now) != len(snaps) {
		t.Fatalf("snapshots after killing the leader mid-sync: %v, before %v", now, snaps)
	}
	setDelay(0)
	waitFor(t, "the other replica to take over and sync", 90*time.Second, func() bool {
		return holder() == other && other.count("scheduled sync done") >= 1
	})
	after := snapshotIDs(t, rb)
	if len(after) != len(snaps)+1 {
		t.Errorf("snapshots after the takeover: %v, want one more than %v", after, snaps)
	}
	resp, body := get(t, other.base+"/snapshots/"+after[len(after)-1]+"/file/images/big.img", nil)
	if resp.StatusCode != 200 || sha(body) != sha(big) {
		t.Errorf("the new leader's snapshot does not serve the file: %d", resp.StatusCode)
	}
	if out := rb.must("verify"); !strings.Contains(out, " 0 problems") {
		t.Errorf("verify after the takeover: %s", out)
	}
}

// snapshotIDs lists the snapshots e's store has.
func snapshotIDs(t *testing.T, e *env) []string {
	t.Helper()
	var list []struct{ ID string }
	if err := json.Unmarshal([]byte(e.must("snapshot", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.ID
	}
	return ids
}
