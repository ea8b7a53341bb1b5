package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/gitcache/gittest"
)

// gitSource is one git source of `snapshot show --json`.
type gitSource struct {
	Kind, Name string
	Refs       map[string]string `json:"refs"`
	Meta       map[string]string `json:"meta"`
}

func (e *env) gitSource(id, name string) gitSource {
	e.t.Helper()
	var rec struct{ Sources []gitSource }
	if err := json.Unmarshal([]byte(e.must("snapshot", "show", "--json", id)), &rec); err != nil {
		e.t.Fatal(err)
	}
	for _, s := range rec.Sources {
		if s.Kind == "git" && s.Name == name {
			return s
		}
	}
	e.t.Fatalf("snapshot %s has no git/%s", id, name)
	return gitSource{}
}

// gitReposYAML is a stacktira-style repos.yaml naming two repositories of
// forge through variables.
func gitReposYAML(forge string) string {
	return fmt.Sprintf(`# modules, stacktira style
forge: %s
ref: main
puppetlabs:
  author: puppetlabs
  source: "%%{forge}/%%{author}/puppetlabs-%%{name}.git"
  stdlib: {}
  apt:
    ref: v1.0
`, forge)
}

// lsRemoteRefs runs git ls-remote (as env's git) and returns ref → id
// without peeled lines.
func lsRemoteRefs(t *testing.T, url string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(gittest.Git(t, "", "ls-remote", url), "\n") {
		if id, ref, ok := strings.Cut(line, "\t"); ok && !strings.HasSuffix(ref, "^{}") {
			out[ref] = id
		}
	}
	return out
}

// advertised is what ls-remote shows for recorded refs: HEAD resolved.
func advertised(refs map[string]string) map[string]string {
	out := maps.Clone(refs)
	if h, ok := out["HEAD"]; ok {
		out["HEAD"] = out[strings.TrimPrefix(h, "ref: ")]
	}
	return out
}

func looseObjects(t *testing.T, dir string) int {
	t.Helper()
	for _, line := range strings.Split(gittest.Git(t, dir, "count-objects", "-v"), "\n") {
		if v, ok := strings.CutPrefix(line, "count: "); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	t.Fatal("git count-objects printed no count")
	return 0
}

func TestGitMirror(t *testing.T) {
	t.Parallel()
	forge := gittest.NewServer(t)
	stdlib := forge.NewRepo(t, "puppetlabs/puppetlabs-stdlib.git")
	gittest.Populate(t, stdlib, 3000)
	apt := forge.NewRepo(t, "puppetlabs/puppetlabs-apt.git")
	gittest.Populate(t, apt, 30)

	e := newEnv(t)
	addr := freePort(t)
	os.WriteFile(filepath.Join(e.dir, "repos.yaml"), []byte(gitReposYAML(forge.URL)), 0o644)
	e.writeConfig(fmt.Sprintf("data_dir: data\npublic_url: http://%s\ngit:\n  repos_file: repos.yaml\n", addr))

	id1 := e.sync()
	rec1 := e.gitSource(id1, "stdlib")
	if want := stdlib.Refs(t); !maps.Equal(rec1.Refs, want) {
		t.Fatalf("recorded refs\n%v\nwant upstream's\n%v", rec1.Refs, want)
	}
	base := e.serve(addr)
	url1 := base + "/snapshots/" + id1 + "/git/stdlib.git"
	if got := lsRemoteRefs(t, url1); !maps.Equal(got, advertised(rec1.Refs)) {
		t.Fatalf("ls-remote %s\n%v\nwant the recorded\n%v", url1, got, advertised(rec1.Refs))
	}
	symref := gittest.Git(t, "", "ls-remote", "--symref", url1)
	var wantList []string
	for _, line := range strings.Split(symref, "\n") {
		if !strings.HasSuffix(line, "^{}") {
			wantList = append(wantList, line)
		}
	}
	if resp, body := get(t, base+"/snapshots/"+id1+"/git/stdlib/refs.txt", nil); resp.StatusCode != 200 || strings.TrimSpace(string(body)) != strings.Join(wantList, "\n") {
		t.Errorf("refs.txt: %d\n%s\nwant git ls-remote --symref's\n%s", resp.StatusCode, body, strings.Join(wantList, "\n"))
	}
	work := t.TempDir()
	clone := filepath.Join(work, "clone")
	gittest.Git(t, "", "clone", "--quiet", url1, clone)
	gittest.Git(t, clone, "fsck", "--strict")

	e.must("snapshot", "promote", id1, "production")
	chanClone := filepath.Join(work, "channel")
	gittest.Git(t, "", "clone", "--quiet", base+"/channels/production/git/apt.git", chanClone)
	if got, want := gittest.Git(t, chanClone, "rev-parse", "HEAD"), apt.Refs(t)["refs/heads/main"]; got != want {
		t.Errorf("channel clone of apt at %s, want %s", got, want)
	}
	shallow := filepath.Join(work, "shallow")
	gittest.Git(t, "", "clone", "--quiet", "--depth", "1", url1, shallow)
	if n := gittest.Git(t, shallow, "rev-list", "--count", "HEAD"); n != "1" {
		t.Errorf("clone --depth 1 has %s commits", n)
	}

	// Upstream moves: new commits, a force-push, a deleted branch, a tag.
	gittest.Advance(t, stdlib, 100)
	id2 := e.sync()
	rec2 := e.gitSource(id2, "stdlib")
	if want := stdlib.Refs(t); !maps.Equal(rec2.Refs, want) {
		t.Fatalf("second snapshot's refs\n%v\nwant\n%v", rec2.Refs, want)
	}
	posts := forge.Posts.Load()
	id3 := e.sync()
	if forge.Posts.Load() != posts {
		t.Error("a sync of unchanged upstreams fetched; want only their refs listed")
	}
	if rec3 := e.gitSource(id3, "stdlib"); rec3.Meta["pin"] != rec2.Meta["pin"] {
		t.Errorf("unchanged upstream: pin %s, want %s", rec3.Meta["pin"], rec2.Meta["pin"])
	}
	e.must("verify")
	diff := e.must("snapshot", "diff", id1, id2)
	for _, want := range []string{"~ refs/heads/main", "~ refs/heads/feature", "- refs/heads/old", "+ refs/tags/v3.0"} {
		if !strings.Contains(diff, want) {
			t.Errorf("snapshot diff lacks %q:\n%s", want, diff)
		}
	}
	url2 := base + "/snapshots/" + id2 + "/git/stdlib.git"
	before := looseObjects(t, clone)
	gittest.Git(t, clone, "-c", "fetch.unpackLimit=1000000", "-c", "transfer.unpackLimit=1000000",
		"fetch", "--quiet", "--tags", "--force", url2, "+refs/heads/*:refs/remotes/s2/*")
	received := looseObjects(t, clone) - before
	revList := []string{"rev-list", "--objects", rec2.Refs["refs/heads/main"], rec2.Refs["refs/heads/feature"], rec2.Refs["refs/tags/v3.0"], "--not"}
	for ref, id := range rec1.Refs {
		if ref != "HEAD" {
			revList = append(revList, id)
		}
	}
	if want := len(strings.Split(gittest.Git(t, stdlib.Dir, revList...), "\n")); received != want {
		t.Errorf("incremental fetch received %d objects, want exactly the %d new ones", received, want)
	}
	t.Logf("incremental fetch: %d objects received", received)

	// The old snapshot is unchanged, also after gc.
	checkClone := func(url string, refs map[string]string) {
		t.Helper()
		if got := lsRemoteRefs(t, url); !maps.Equal(got, advertised(refs)) {
			t.Errorf("ls-remote %s\n%v\nwant\n%v", url, got, advertised(refs))
		}
		dir := filepath.Join(t.TempDir(), "m")
		gittest.Git(t, "", "clone", "--quiet", "--mirror", url, dir)
		gittest.Git(t, dir, "fsck", "--strict")
	}
	e.must("gc", "--grace", "0s")
	checkClone(url1, rec1.Refs)

	// Read-only, and nothing outside a snapshot.
	if r := gittest.Run(t, clone, "", nil, "push", url1, "HEAD:refs/heads/mine"); r.Err == nil || !strings.Contains(r.Stderr, "read-only") {
		t.Errorf("push: err %v, stderr %q; want refused as read-only", r.Err, r.Stderr)
	}
	for _, proto := range []string{"0", "2"} {
		dir := t.TempDir()
		gittest.Git(t, dir, "init", "--quiet")
		r := gittest.Run(t, dir, "", nil, "-c", "protocol.version="+proto, "fetch", url1, rec2.Refs["refs/heads/main"])
		if r.Err == nil || !strings.Contains(r.Stderr, "not our ref") {
			t.Errorf("protocol v%s: fetching %s's main from %s: err %v, stderr %q; want refused (not our ref)", proto, id2, id1, r.Err, r.Stderr)
		}
	}

	// snapshot delete + gc, then the next sync drop the old pin and what
	// only it needed from the local repository (a cache of the store).
	e.must("snapshot", "promote", id2, "production")
	e.must("snapshot", "delete", id1)
	e.must("gc", "--grace", "0s")
	e.sync()
	bare := filepath.Join(e.dir, "data", "state", "git", "stdlib", "repo.git")
	if left := gittest.Git(t, bare, "for-each-ref", "refs/namespaces/"+rec1.Meta["pin"]+"/"); left != "" {
		t.Errorf("pin %s of the deleted snapshot survived gc:\n%s", rec1.Meta["pin"], left)
	}
	if r := gittest.Run(t, bare, "", nil, "cat-file", "-e", rec1.Refs["refs/heads/old"]); r.Err == nil {
		t.Error("the deleted branch's commit survived gc")
	}
	checkClone(url2, rec2.Refs)

	// repos-yaml: the repos file, every source on the mirror.
	out := e.must("repos-yaml", "--channel", "production")
	repos, err := config.ParseRepos("repos-yaml output", []byte(out))
	if err != nil {
		t.Fatalf("repos-yaml output does not parse: %v\n%s", err, out)
	}
	for _, r := range repos {
		if want := base + "/channels/production/git/" + r.Name + ".git"; r.URL != want {
			t.Errorf("repos-yaml: %s source %s, want %s", r.Name, r.URL, want)
		}
	}
	if len(repos) != 2 || repos[0].Ref != "v1.0" {
		t.Errorf("repos-yaml: %+v", repos)
	}

	// client-config's insteadOf rules: a plain clone of the upstream URL
	// works with the upstream gone.
	gitconfig := filepath.Join(work, "gitconfig")
	os.WriteFile(gitconfig, []byte(e.must("client-config", "--channel", "production")), 0o644)
	forge.Stop()
	plain := filepath.Join(work, "plain")
	r := gittest.Run(t, "", "", []string{"GIT_CONFIG_GLOBAL=" + gitconfig}, "clone", "--quiet", stdlib.URL, plain)
	if r.Err != nil {
		t.Fatalf("git clone %s through insteadOf: %v\n%s", stdlib.URL, r.Err, r.Stderr)
	}
	if got := gittest.Git(t, plain, "rev-parse", "HEAD"); got != rec2.Refs["refs/heads/main"] {
		t.Errorf("insteadOf clone at %s, want %s", got, rec2.Refs["refs/heads/main"])
	}
}

func TestGitBadInput(t *testing.T) {
	t.Parallel()
	gittest.RequireGit(t)
	for _, tc := range []struct {
		name, repos string
		code        int
		want        []string
	}{
		{"unknown variable", "g:\n  source: \"%{forge}/x\"\n  stdlib: {}\n", 2,
			[]string{"repos.yaml:2: ", `repo "stdlib" (group "g")`, "unknown variable %{forge}"}},
		{"cycle", "a: \"%{b}\"\nb: \"%{a}\"\ng:\n  stdlib: {source: \"%{a}\"}\n", 2,
			[]string{"repos.yaml:2: ", `repo "stdlib" (group "g")`, "variable cycle %{a} -> %{b} -> %{a} in source"}},
		{"missing source", "g:\n  stdlib: {ref: main}\n", 2,
			[]string{"repos.yaml:2: ", `repo "stdlib" (group "g")`, "no source"}},
		{"duplicate entry across groups", "source: /srv/x.git\na:\n  stdlib:\nb:\n  stdlib:\n", 2,
			[]string{"repos.yaml:5: ", `repo "stdlib" (group "b")`, `duplicate repo name, already defined in group "a" at line 3`}},
		{"the old nested format", "repos:\n  g:\n    repos:\n      stdlib: {}\n", 2,
			[]string{"repos.yaml:3: ", `the nested "repos:" format is gone`}},
		{"unreachable upstream", "g:\n  stdlib: {source: \"http://" + freePort(t) + "/stdlib.git\"}\n", 1,
			[]string{"git/stdlib", "/stdlib.git"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			os.WriteFile(filepath.Join(e.dir, "repos.yaml"), []byte(tc.repos), 0o644)
			e.writeConfig("data_dir: data\ngit:\n  repos_file: repos.yaml\n")
			r := e.run("sync")
			if r.code != tc.code {
				t.Fatalf("exit %d, want %d\nstderr: %s", r.code, tc.code, r.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error %q does not mention %q", strings.TrimSpace(r.stderr), w)
				}
			}
			if list := strings.TrimSpace(e.must("snapshot", "list", "--json")); list != "[]" {
				t.Errorf("a failed sync left snapshots: %s", list)
			}
		})
	}
}

// stacktiraRepos is a repos.yaml shaped exactly like stacktira's own
// (https is replaced by the fixture forge's URL through git_host): three
// groups, one without variables, per-entry authors, a branch, a tag, a
// commit in history and a commit on no branch, a commented-out key, and an
// anchor with merge keys.
const stacktiraRepos = `# Puppet modules for the site, cloned by stacktira
destdir: 'modules/'            # top level: a scalar value is a variable
git_host: %s
ref: master
x-openstack: &os               # a group of variables only, merged below
  source: "%%{git_host}/%%{author}/puppet-%%{name}.git"
  dest: "%%{destdir}%%{name}"

openstack:                     # top level: a mapping value is a group
  author: openstack            # in a group: a scalar value is a group variable
  nova:                        # in a group: a mapping (or empty) value is an entry
    source: "%%{git_host}/%%{author}/puppet-nova.git"
    dest: "%%{destdir}nova"
    ref: stable/2024.1
  keystone:
    <<: *os
    ref: stable/2024.1

community:                     # a group with no variables of its own
  consul:
    source: "%%{git_host}/%%{author}/puppet-consul.git"
    dest: "%%{destdir}consul"
    author: solarkennedy       # entry variables override the group's, then the top level
    ref: %s   # a commit
  selinux:
    source: "%%{git_host}/%%{author}/puppet-selinux.git"
    dest: "%%{destdir}selinux"
    author: jfryman
    #ref: 1.2.0                # comments are ignored
    ref: %s   # a commit on no branch

puppetlabs:
  author: puppetlabs
  source: "%%{git_host}/%%{author}/puppetlabs-%%{name}.git"
  dest: "%%{destdir}%%{name}"
  stdlib:
    ref: v2.0                  # a tag
  apt:
`

// stacktiraForge serves the repositories stacktiraRepos names and returns
// the file, and each entry's expected commit.
func stacktiraForge(t *testing.T) (*gittest.Server, string, map[string]string) {
	forge := gittest.NewServer(t)
	repos := map[string]*gittest.Upstream{}
	for name, path := range map[string]string{
		"nova": "openstack/puppet-nova", "keystone": "openstack/puppet-keystone", "consul": "solarkennedy/puppet-consul",
		"selinux": "jfryman/puppet-selinux", "stdlib": "puppetlabs/puppetlabs-stdlib", "apt": "puppetlabs/puppetlabs-apt",
	} {
		u := forge.NewRepo(t, path+".git")
		gittest.Import(t, u.Dir, (&gittest.Stream{Files: 20}).Commits("refs/heads/master", "", "", name, 12).String())
		gittest.Import(t, u.Dir, (&gittest.Stream{Files: 20}).Commits("refs/heads/stable/2024.1", "refs/heads/master~4", "", name+"-stable", 3).String())
		gittest.Git(t, u.Dir, "symbolic-ref", "HEAD", "refs/heads/master")
		gittest.Git(t, u.Dir, "tag", "-a", "-m", "release 2", "v2.0", "master~2")
		repos[name] = u
	}
	// selinux's ref is a commit no branch or tag reaches (its branch
	// was deleted); forges let a client fetch such a commit by id.
	sel := repos["selinux"]
	gittest.Import(t, sel.Dir, (&gittest.Stream{Files: 20}).Commits("refs/heads/gone", "refs/heads/master^0", "", "gone", 2).String())
	orphan := gittest.Git(t, sel.Dir, "rev-parse", "refs/heads/gone")
	gittest.Git(t, sel.Dir, "branch", "-D", "gone")
	gittest.Git(t, sel.Dir, "config", "uploadpack.allowAnySHA1InWant", "true")
	consul := gittest.Git(t, repos["consul"].Dir, "rev-parse", "master~5")
	want := map[string]string{"consul": consul, "selinux": orphan}
	for name, rev := range map[string]string{"nova": "stable/2024.1", "keystone": "stable/2024.1", "stdlib": "v2.0^{commit}", "apt": "HEAD"} {
		want[name] = gittest.Git(t, repos[name].Dir, "rev-parse", rev)
	}
	return forge, fmt.Sprintf(stacktiraRepos, forge.URL, consul, orphan), want
}

// TestGitStacktiraRepos: a repos.yaml in stacktira's exact shape is
// mirrored, served rewritten to the mirror, and every entry clones from the
// mirror alone at its ref into its dest.
func TestGitStacktiraRepos(t *testing.T) {
	t.Parallel()
	forge, reposFile, want := stacktiraForge(t)
	e := newEnv(t)
	addr := freePort(t)
	os.WriteFile(filepath.Join(e.dir, "repos.yaml"), []byte(reposFile), 0o644)
	e.writeConfig(fmt.Sprintf("data_dir: data\npublic_url: http://%s\ngit:\n  repos_file: repos.yaml\n", addr))
	id := e.sync()
	for name, commit := range want {
		src := e.gitSource(id, name)
		if src.Meta["commit"] != commit {
			t.Errorf("git/%s: Meta commit %q, want %s", name, src.Meta["commit"], commit)
		}
	}
	if m := e.gitSource(id, "nova").Meta; m["dest"] != "modules/nova" || m["ref"] != "stable/2024.1" {
		t.Errorf("git/nova: Meta %v, want dest modules/nova, ref stable/2024.1", m)
	}
	if m := e.gitSource(id, "apt").Meta; m["dest"] != "modules/apt" || m["ref"] != "master" {
		t.Errorf("git/apt: Meta %v, want dest modules/apt, ref master", m)
	}
	e.must("snapshot", "promote", id, "production")
	base := e.serve(addr)
	forge.Stop()
	resp, served := get(t, base+"/snapshots/"+id+"/git/repos.yaml", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "public, max-age=31536000, immutable" {
		t.Fatalf("GET repos.yaml: %d %v\n%s", resp.StatusCode, resp.Header, served)
	}
	if cli := e.must("repos-yaml", "--snapshot", id); cli != string(served) {
		t.Errorf("mirrord repos-yaml differs from the served file:\n%s\nserved:\n%s", cli, served)
	}
	for _, keep := range []string{"#ref: 1.2.0", "# a group with no variables of its own", "<<: *os", "destdir: 'modules/'", "\n\ncommunity:"} {
		if !strings.Contains(string(served), keep) {
			t.Errorf("served repos.yaml lost %q:\n%s", keep, served)
		}
	}
	resp, chanFile := get(t, base+"/channels/production/git/repos.yaml", nil)
	if resp.StatusCode != 200 || resp.Header.Get("Cache-Control") != "no-cache" ||
		string(chanFile) != strings.ReplaceAll(string(served), base+"/snapshots/"+id, base+"/channels/production") {
		t.Errorf("channel repos.yaml: %d %v\n%s", resp.StatusCode, resp.Header, chanFile)
	}
	entries, err := config.ParseRepos("served repos.yaml", served)
	if err != nil {
		t.Fatalf("served repos.yaml: %v\n%s", err, served)
	}
	if len(entries) != len(want) {
		t.Fatalf("served repos.yaml has %d entries, want %d:\n%s", len(entries), len(want), served)
	}
	// What a cloner does with the file: clone source into dest, check out ref.
	work := t.TempDir()
	for _, r := range entries {
		if u := base + "/snapshots/" + id + "/git/" + r.Name + ".git"; r.URL != u {
			t.Errorf("%s: source %s, want %s", r.Name, r.URL, u)
		}
		dest := filepath.Join(work, r.Dest)
		gittest.Git(t, "", "clone", "--quiet", r.URL, dest)
		if co := gittest.Run(t, dest, "", nil, "checkout", "--quiet", r.Ref); co.Err != nil {
			// A commit no branch reaches is fetched by id, as from a forge.
			gittest.Git(t, dest, "fetch", "--quiet", "origin", r.Ref)
			gittest.Git(t, dest, "checkout", "--quiet", r.Ref)
		}
		if got := gittest.Git(t, dest, "rev-parse", "HEAD"); got != want[r.Name] {
			t.Errorf("%s at %s in %s: %s, want upstream's %s", r.Name, r.Ref, r.Dest, got, want[r.Name])
		}
	}
}

// TestGitRefMissing: a ref the upstream does not have fails the sync with
// the entry, file:line, the ref and the upstream URL.
func TestGitRefMissing(t *testing.T) {
	t.Parallel()
	forge := gittest.NewServer(t)
	u := forge.NewRepo(t, "puppetlabs/puppetlabs-stdlib.git")
	gittest.Populate(t, u, 20)
	for name, ref := range map[string]string{"branch": "stable/2099", "commit": "0123456789abcdef0123456789abcdef01234567"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			os.WriteFile(filepath.Join(e.dir, "repos.yaml"), []byte(fmt.Sprintf("puppetlabs:\n  source: %q\n  stdlib:\n    ref: %s\n", u.URL, ref)), 0o644)
			e.writeConfig("data_dir: data\ngit:\n  repos_file: repos.yaml\n")
			r := e.run("sync")
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\nstderr: %s", r.code, r.stderr)
			}
			for _, w := range []string{"git/stdlib", "repos.yaml:3: ", `repo "stdlib" (group "puppetlabs")`, fmt.Sprintf("%q", ref), u.URL} {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("error %q does not mention %q", strings.TrimSpace(r.stderr), w)
				}
			}
			if list := strings.TrimSpace(e.must("snapshot", "list", "--json")); list != "[]" {
				t.Errorf("a failed sync left snapshots: %s", list)
			}
		})
	}
}

// gitTree returns the tree of git/NAME in snapshot id: path → digest,
// read from the store as any replica would.
func (e *env) gitTree(id, name string) map[string]string {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(e.dir, "data", "meta", "snapshots", id))
	if err != nil {
		e.t.Fatal(err)
	}
	var rec struct {
		Sources []struct{ Kind, Name, Tree string }
	}
	if err := json.Unmarshal(data, &rec); err != nil {
		e.t.Fatal(err)
	}
	for _, s := range rec.Sources {
		if s.Kind != "git" || s.Name != name {
			continue
		}
		tree, err := os.ReadFile(e.blobPath(s.Tree))
		if err != nil {
			e.t.Fatal(err)
		}
		out := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(tree)), "\n") {
			if f := strings.Fields(line); len(f) == 3 {
				out[f[2]] = f[0]
			}
		}
		return out
	}
	e.t.Fatalf("snapshot %s has no git/%s", id, name)
	return nil
}

func (e *env) blobPath(digest string) string {
	return filepath.Join(e.dir, "data", "blobs", "sha256", digest[:2], digest)
}

// packsOf returns the digests of the pack files (.pack, .idx, .bitmap) of a tree.
func packsOf(tree map[string]string) map[string]string {
	out := map[string]string{}
	for p, d := range tree {
		if strings.HasPrefix(p, "packs/") {
			out[p] = d
		}
	}
	return out
}

// TestGitStateIsACache: git objects are packs in the blob store. With
// data_dir/state deleted on the very host that synced, the snapshot still
// clones (git fsck clean), an incremental fetch receives only the new
// objects, and the next sync adds a pack of what is new; a host that never
// synced serves it from a copy of the store; verify covers the packs and gc
// deletes the packs no snapshot needs.
func TestGitStateIsACache(t *testing.T) {
	t.Parallel()
	forge := gittest.NewServer(t)
	stdlib := forge.NewRepo(t, "puppetlabs/puppetlabs-stdlib.git")
	gittest.Populate(t, stdlib, 500)
	e := newEnv(t)
	addr := freePort(t)
	os.WriteFile(filepath.Join(e.dir, "repos.yaml"), []byte(fmt.Sprintf("puppetlabs:\n  stdlib:\n    source: %s\n", stdlib.URL)), 0o644)
	e.writeConfig(fmt.Sprintf("data_dir: data\npublic_url: http://%s\ngit:\n  repos_file: repos.yaml\n", addr))
	state := filepath.Join(e.dir, "data", "state")

	id1 := e.sync()
	rec1 := e.gitSource(id1, "stdlib")
	packs1 := packsOf(e.gitTree(id1, "stdlib"))
	if len(packs1) != 3 {
		t.Fatalf("first snapshot's packs: %v, want one pack with its index and bitmap", packs1)
	}
	os.RemoveAll(state)
	base := e.serve(addr)
	url1 := base + "/snapshots/" + id1 + "/git/stdlib.git"
	clone := filepath.Join(t.TempDir(), "clone")
	gittest.Git(t, "", "clone", "--quiet", "--mirror", url1, clone)
	gittest.Git(t, clone, "fsck", "--strict")
	if got := lsRemoteRefs(t, url1); !maps.Equal(got, advertised(rec1.Refs)) {
		t.Fatalf("ls-remote of a snapshot rebuilt from the store:\n%v\nwant\n%v", got, advertised(rec1.Refs))
	}

	gittest.Advance(t, stdlib, 100)
	os.RemoveAll(state) // the next sync, too, starts from the store alone
	id2 := e.sync()
	rec2 := e.gitSource(id2, "stdlib")
	packs2 := packsOf(e.gitTree(id2, "stdlib"))
	for p, d := range packs1 {
		if packs2[p] != d {
			t.Errorf("second snapshot lacks the first one's %s: %v", p, packs2)
		}
	}
	if len(packs2) != 5 {
		t.Errorf("second snapshot's packs: %v, want the first pack plus one (.pack, .idx)", packs2)
	}
	os.RemoveAll(state)
	url2 := base + "/snapshots/" + id2 + "/git/stdlib.git"
	before := looseObjects(t, clone)
	gittest.Git(t, clone, "-c", "fetch.unpackLimit=1000000", "-c", "transfer.unpackLimit=1000000",
		"fetch", "--quiet", "--force", url2, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
	gittest.Git(t, clone, "fsck", "--strict")
	received := looseObjects(t, clone) - before
	if want := newObjects(t, stdlib.Dir, rec2.Refs, rec1.Refs); received != want {
		t.Errorf("incremental fetch from a rebuilt repository received %d objects, want exactly the %d new ones", received, want)
	}

	// A host that never synced: its data_dir is a copy of the store alone.
	other := newEnv(t)
	os.MkdirAll(filepath.Join(other.dir, "data"), 0o755)
	for _, d := range []string{"blobs", "meta"} {
		if out, err := exec.Command("cp", "-a", filepath.Join(e.dir, "data", d), filepath.Join(other.dir, "data", d)).CombinedOutput(); err != nil {
			t.Fatalf("copying the store: %v\n%s", err, out)
		}
	}
	addr2 := freePort(t)
	other.writeConfig(fmt.Sprintf("data_dir: data\npublic_url: http://%s\n", addr2))
	otherURL := other.serve(addr2) + "/snapshots/" + id2 + "/git/stdlib.git"
	mirror2 := filepath.Join(t.TempDir(), "other")
	gittest.Git(t, "", "clone", "--quiet", "--mirror", otherURL, mirror2)
	gittest.Git(t, mirror2, "fsck", "--strict")
	if got := lsRemoteRefs(t, otherURL); !maps.Equal(got, advertised(rec2.Refs)) {
		t.Errorf("ls-remote on a host that never synced:\n%v\nwant\n%v", got, advertised(rec2.Refs))
	}

	// A snapshot only one pack belongs to: gc deletes that pack once the
	// snapshot is gone, and keeps the ones live snapshots name.
	gittest.Import(t, stdlib.Dir, (&gittest.Stream{Files: 300}).Commits("refs/heads/main", "refs/heads/main^0", "", "three", 10).String())
	id3 := e.sync()
	var only3 []string
	for p, d := range packsOf(e.gitTree(id3, "stdlib")) {
		if _, ok := packs2[p]; !ok {
			only3 = append(only3, d)
		}
	}
	if len(only3) != 2 {
		t.Fatalf("third snapshot adds %d pack files, want 2", len(only3))
	}
	if out := e.must("verify"); !strings.Contains(out, " 0 problems") {
		t.Errorf("verify: %s", out)
	}
	e.must("snapshot", "delete", id3)
	e.must("gc", "--grace", "0s")
	for _, d := range only3 {
		if _, err := os.Stat(e.blobPath(d)); err == nil {
			t.Errorf("gc kept pack blob %s that only the deleted snapshot needed", d)
		}
	}
	for p, d := range packs2 {
		if _, err := os.Stat(e.blobPath(d)); err != nil {
			t.Errorf("gc deleted %s of a live snapshot: %v", p, err)
		}
	}
	// verify re-hashes pack blobs like any other.
	victim := e.blobPath(packs2[func() string {
		for p := range packs2 {
			if strings.HasSuffix(p, ".pack") {
				return p
			}
		}
		return ""
	}()])
	os.Chmod(victim, 0o644)
	data, _ := os.ReadFile(victim)
	data[len(data)/2] ^= 0xff
	os.WriteFile(victim, data, 0o644)
	if r := e.run("verify"); r.code == 0 || !strings.Contains(r.stdout+r.stderr, "git/stdlib") {
		t.Errorf("verify of a corrupted pack: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// newObjects counts the objects in upstream dir reachable from the refs of
// now and not from those of before: what an incremental fetch must send.
func newObjects(t *testing.T, dir string, now, before map[string]string) int {
	t.Helper()
	revList := []string{"rev-list", "--objects"}
	for ref, id := range now {
		if ref != "HEAD" {
			revList = append(revList, id)
		}
	}
	revList = append(revList, "--not")
	for ref, id := range before {
		if ref != "HEAD" {
			revList = append(revList, id)
		}
	}
	return len(strings.Split(gittest.Git(t, dir, revList...), "\n"))
}
