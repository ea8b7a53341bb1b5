// Package gittest builds git fixtures for tests with the real git CLI:
// upstream repositories filled by `git fast-import` (thousands of commits in
// well under a second) and served by `git http-backend` on 127.0.0.1.
package gittest

import (
	"bytes"
	"fmt"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mirrord/mirrord/internal/requiretool"
)

// RequireGit skips t when git is missing, except under CI=true, where it
// fails: CI must have every tool the tests use.
func RequireGit(t testing.TB) string {
	t.Helper()
	return requiretool.Path(t, "git")
}

// Env is a clean environment for the git CLI: no user or system config
// (callers may append GIT_CONFIG_GLOBAL=FILE; the last value wins), fixed
// identities, no prompts. glibc's heap is told to grow in large steps: in
// sandboxes where brk(2) is slow (gVisor), git's many small heap
// extensions otherwise make fast-import of a few thousand commits take
// seconds instead of a fraction of one.
func Env() []string {
	return []string{
		"MALLOC_TOP_PAD_=67108864",
		"PATH=" + os.Getenv("PATH"), "HOME=" + filepath.Join(os.TempDir(), "gittest-no-home"), "LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Fixture", "GIT_AUTHOR_EMAIL=fixture@example.invalid",
		"GIT_COMMITTER_NAME=Fixture", "GIT_COMMITTER_EMAIL=fixture@example.invalid",
		"GIT_AUTHOR_DATE=1700000000 +0000", "GIT_COMMITTER_DATE=1700000000 +0000",
	}
}

// Result is one git run.
type Result struct {
	Stdout, Stderr string
	Err            error
}

// Run runs git with args in dir (may be "") with env added to Env(); stdin
// may be "".
func Run(t testing.TB, dir string, stdin string, env []string, args ...string) Result {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(Env(), env...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	return Result{Stdout: so.String(), Stderr: se.String(), Err: err}
}

// Git runs git and returns its trimmed standard output, failing t on error.
func Git(t testing.TB, dir string, args ...string) string {
	t.Helper()
	r := Run(t, dir, "", nil, args...)
	if r.Err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), r.Err, r.Stderr)
	}
	return strings.TrimSpace(r.Stdout)
}

// Import feeds a fast-import stream to the repository at dir.
func Import(t testing.TB, dir, stream string) {
	t.Helper()
	r := Run(t, dir, stream, nil, "fast-import", "--quiet", "--force")
	if r.Err != nil {
		t.Fatalf("git fast-import: %v\n%s", r.Err, r.Stderr)
	}
}

// Stream writes fast-import streams. Every commit changes one of Files
// files under a directory of its own, so trees and blobs grow with commits.
type Stream struct {
	b     strings.Builder
	clock int64 // seconds after the base time; strictly increasing
	Files int
}

// Commits appends n commits to ref; the first one's parent is from, and
// merge, when set, makes it a merge of that commit too. Both are
// fast-import commit-ishes: a branch written earlier in this stream
// ("refs/heads/side"), an expression on the repository's refs
// ("refs/heads/main^0", "refs/heads/main~40"), or a commit id; from ""
// makes a root commit. tag names the
// content so different branches write different blobs.
func (s *Stream) Commits(ref, from, merge, tag string, n int) *Stream {
	files := max(s.Files, 1)
	for i := 0; i < n; i++ {
		s.clock++
		fmt.Fprintf(&s.b, "commit %s\ncommitter Fixture <fixture@example.invalid> %d +0000\n", ref, 1700000000+s.clock)
		writeData(&s.b, fmt.Sprintf("%s commit %d\n", tag, i))
		if i == 0 && from != "" {
			fmt.Fprintf(&s.b, "from %s\n", from)
		}
		if i == 0 && merge != "" {
			fmt.Fprintf(&s.b, "merge %s\n", merge)
		}
		fmt.Fprintf(&s.b, "M 644 inline d%02d/f%04d.txt\n", i%7, i%files)
		writeData(&s.b, fmt.Sprintf("%s: content of commit %d at %d\n", tag, i, s.clock))
		s.b.WriteString("\n")
	}
	return s
}

func writeData(b *strings.Builder, data string) {
	fmt.Fprintf(b, "data %d\n%s", len(data), data)
}

// String is the stream so far.
func (s *Stream) String() string { return s.b.String() }

// Server serves the bare repositories under a temp dir over smart HTTP with
// git http-backend on 127.0.0.1, like a forge: NewRepo("org/name.git")
// is cloned from URL+"/org/name.git".
type Server struct {
	Root string
	URL  string
	srv  *httptest.Server
	// Posts counts upload-pack POSTs (fetches, as opposed to ref
	// listings).
	Posts atomic.Int64
}

// NewServer starts an empty server; it stops when the test ends (or with
// Stop).
func NewServer(t testing.TB) *Server {
	t.Helper()
	gitPath := RequireGit(t)
	s := &Server{Root: t.TempDir()}
	cg := &cgi.Handler{
		Path: gitPath, Args: []string{"http-backend"}, Dir: s.Root,
		Env: append(Env(), "GIT_PROJECT_ROOT="+s.Root, "GIT_HTTP_EXPORT_ALL=1"),
	}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			s.Posts.Add(1)
		}
		cg.ServeHTTP(w, r)
	}))
	s.URL = s.srv.URL
	t.Cleanup(s.srv.Close)
	return s
}

// Stop shuts the server down: its repositories become unreachable.
func (s *Server) Stop() { s.srv.Close() }

// Upstream is one bare repository on a Server.
type Upstream struct {
	*Server
	Dir string // the bare repository
	URL string // its clone URL
}

// NewRepo creates an empty bare repository at path (relative to the root,
// e.g. "puppetlabs/puppetlabs-stdlib.git") with main as its HEAD.
func (s *Server) NewRepo(t testing.TB, path string) *Upstream {
	t.Helper()
	dir := filepath.Join(s.Root, filepath.FromSlash(path))
	Git(t, "", "init", "--quiet", "--bare", "--initial-branch=main", dir)
	return &Upstream{Server: s, Dir: dir, URL: s.URL + "/" + path}
}

// NewUpstream serves one empty repository NAME.git on a server of its own.
func NewUpstream(t testing.TB, name string) *Upstream {
	return NewServer(t).NewRepo(t, name+".git")
}

// Refs returns what the upstream advertises under refs/heads and refs/tags
// (ref → object id), plus "HEAD" → "ref: <target>".
func (u *Upstream) Refs(t testing.TB) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, line := range strings.Split(Git(t, u.Dir, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads", "refs/tags"), "\n") {
		if id, ref, ok := strings.Cut(line, " "); ok {
			out[ref] = id
		}
	}
	if head := Run(t, u.Dir, "", nil, "symbolic-ref", "HEAD"); head.Err == nil {
		out["HEAD"] = "ref: " + strings.TrimSpace(head.Stdout)
	}
	return out
}

// Populate fills an empty upstream with a history that has what a mirror
// must handle: main with n commits and a merge of a side branch, branches
// feature and old, annotated and lightweight tags (one annotated tag of a
// tag), and a refs/pull ref a mirror must not take.
func Populate(t testing.TB, u *Upstream, n int) {
	t.Helper()
	Import(t, u.Dir, (&Stream{Files: 300}).Commits("refs/heads/main", "", "", "main", n).String())
	s := &Stream{Files: 300}
	s.Commits("refs/heads/side", "refs/heads/main^0", "", "side", 20)
	s.Commits("refs/heads/main", "refs/heads/main^0", "refs/heads/side", "merge", 1)
	s.Commits("refs/heads/feature", "refs/heads/main", "", "feature", 30)
	s.Commits("refs/heads/old", fmt.Sprintf("refs/heads/main~%d", min(40, n/2)), "", "old", 5)
	s.Commits("refs/pull/1/head", "refs/heads/main", "", "pull", 3)
	Import(t, u.Dir, s.String())
	Git(t, u.Dir, "tag", "-a", "-m", "release 1", "v1.0", "main~10")
	Git(t, u.Dir, "tag", "-a", "-m", "release 2", "v2.0", "main")
	Git(t, u.Dir, "tag", "-a", "-m", "tag of a tag", "v2.0-signed", "v2.0")
	Git(t, u.Dir, "tag", "light", "feature~3")
}

// Advance moves a Populate'd upstream on as upstreams do: n new commits on
// main, feature force-pushed (rewritten from feature~5), old deleted, and
// a new annotated tag v3.0 on main.
func Advance(t testing.TB, u *Upstream, n int) {
	t.Helper()
	s := &Stream{Files: 300}
	s.Commits("refs/heads/main", "refs/heads/main^0", "", "advance", n)
	s.Commits("refs/heads/feature", "refs/heads/feature~5^0", "", "rewrite", 4)
	Import(t, u.Dir, s.String())
	Git(t, u.Dir, "branch", "-D", "old")
	Git(t, u.Dir, "tag", "-a", "-m", "release 3", "v3.0", "main")
}
