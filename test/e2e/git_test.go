package e2e

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
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
repos:
  puppetlabs:
    author: puppetlabs
    source: "%%{forge}/%%{author}/puppetlabs-%%{name}.git"
    repos:
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

	// snapshot delete + gc drop the old pin and what only it needed.
	e.must("snapshot", "promote", id2, "production")
	e.must("snapshot", "delete", id1)
	e.must("gc", "--grace", "0s")
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
		{"unknown variable", "repos:\n  g:\n    source: \"%{forge}/x\"\n    repos:\n      stdlib: {}\n", 2,
			[]string{"repos.yaml", `repo "stdlib"`, "unknown variable %{forge}"}},
		{"missing source", "repos:\n  g:\n    repos:\n      stdlib: {ref: main}\n", 2,
			[]string{"repos.yaml", `repo "stdlib"`, "no source"}},
		{"unreachable upstream", "repos:\n  g:\n    repos:\n      stdlib: {source: \"http://" + freePort(t) + "/stdlib.git\"}\n", 1,
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
