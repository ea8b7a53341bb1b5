// Package yumtest builds real yum repositories for tests: tiny noarch rpms
// made with rpmbuild, signed with rpmsign by a throwaway GnuPG key, indexed
// with createrepo_c (any compression, checksum type, updateinfo, modules),
// repomd.xml signed with gpg --detach-sign --armor, and served by httptest
// on 127.0.0.1.
//
// Missing tools skip the test, except under CI=true where they fail it.
package yumtest

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mirrord/mirrord/internal/requiretool"
)

// NeedTools skips t (or fails it when CI=true) unless every tool is on PATH.
func NeedTools(t testing.TB, tools ...string) {
	t.Helper()
	requiretool.All(t, tools...)
}

// run runs a command and fails t with its output when it fails.
func run(t testing.TB, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.Bytes()
}

// Signer is a throwaway GnuPG home holding one RSA signing key.
type Signer struct {
	Home        string
	Fingerprint string
	// PublicKey is the armored public key, also written to PublicKeyFile.
	PublicKey     []byte
	PublicKeyFile string
}

// NewSigner generates a key for uid ("Name <mail>") in a temp GNUPGHOME.
func NewSigner(t testing.TB, uid string) *Signer {
	t.Helper()
	NeedTools(t, "gpg")
	home, err := os.MkdirTemp("", "yumtest-gnupg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		exec.Command("gpgconf", "--homedir", home, "--kill", "gpg-agent").Run()
		os.RemoveAll(home)
	})
	s := &Signer{Home: home}
	out := s.gpg(t, "--status-fd", "1", "--quick-gen-key", uid, "rsa2048", "sign", "never")
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[1] == "KEY_CREATED" {
			s.Fingerprint = f[3]
		}
	}
	if s.Fingerprint == "" {
		t.Fatalf("gpg: no KEY_CREATED in\n%s", out)
	}
	s.PublicKey = s.gpg(t, "--armor", "--export", s.Fingerprint)
	s.PublicKeyFile = filepath.Join(t.TempDir(), "RPM-GPG-KEY-fixture")
	if err := os.WriteFile(s.PublicKeyFile, s.PublicKey, 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *Signer) gpg(t testing.TB, args ...string) []byte {
	t.Helper()
	base := []string{"--homedir", s.Home, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}
	return run(t, []string{"GNUPGHOME=" + s.Home, "LC_ALL=C"}, "gpg", append(base, args...)...)
}

// DetachSign writes path.asc, an armored detached signature of path.
func (s *Signer) DetachSign(t testing.TB, path string) {
	t.Helper()
	s.gpg(t, "--yes", "--local-user", s.Fingerprint, "--detach-sign", "--armor", "--output", path+".asc", path)
}

// SignRPMs signs rpms in place with rpmsign --addsign.
func (s *Signer) SignRPMs(t testing.TB, rpms ...string) {
	t.Helper()
	if len(rpms) == 0 {
		return
	}
	NeedTools(t, "rpmsign")
	args := []string{
		"--define", "__gpg " + gpgPath(t),
		"--define", "_gpg_name " + s.Fingerprint,
		"--define", "_gpg_path " + s.Home,
		"--addsign",
	}
	run(t, []string{"GNUPGHOME=" + s.Home, "LC_ALL=C"}, "rpmsign", append(args, rpms...)...)
}

func gpgPath(t testing.TB) string {
	return requiretool.Path(t, "gpg")
}

// Package describes a tiny noarch rpm.
type Package struct {
	Name     string
	Epoch    int    // 0: no epoch
	Version  string // default "1.0"
	Release  string // default "1"
	Requires []string
	Provides []string
	// Files are the absolute paths the package installs (each holds the
	// package's NEVR); default /usr/share/NAME/README.
	Files []string
}

func (p Package) withDefaults() Package {
	if p.Version == "" {
		p.Version = "1.0"
	}
	if p.Release == "" {
		p.Release = "1"
	}
	if len(p.Files) == 0 {
		p.Files = []string{"/usr/share/" + p.Name + "/README"}
	}
	return p
}

// FileName is the rpm file name rpmbuild gives p.
func (p Package) FileName() string {
	p = p.withDefaults()
	return fmt.Sprintf("%s-%s-%s.noarch.rpm", p.Name, p.Version, p.Release)
}

// EVR is p's "[E:]V-R".
func (p Package) EVR() string {
	p = p.withDefaults()
	if p.Epoch > 0 {
		return fmt.Sprintf("%d:%s-%s", p.Epoch, p.Version, p.Release)
	}
	return p.Version + "-" + p.Release
}

// Spec returns one spec file building every package as a subpackage;
// names must be distinct.
func Spec(pkgs []Package) string {
	var b strings.Builder
	b.WriteString("Name: yumtest-fixture\nVersion: 1\nRelease: 1\nSummary: fixture\nLicense: MIT\nBuildArch: noarch\n")
	b.WriteString("%description\nfixture\n\n")
	for _, p := range pkgs {
		p = p.withDefaults()
		fmt.Fprintf(&b, "%%package -n %s\nSummary: %s test package\nVersion: %s\nRelease: %s\nAutoReqProv: no\n", p.Name, p.Name, p.Version, p.Release)
		if p.Epoch > 0 {
			fmt.Fprintf(&b, "Epoch: %d\n", p.Epoch)
		}
		for _, r := range p.Requires {
			fmt.Fprintf(&b, "Requires: %s\n", r)
		}
		for _, r := range p.Provides {
			fmt.Fprintf(&b, "Provides: %s\n", r)
		}
		fmt.Fprintf(&b, "%%description -n %s\nThe %s test package.\n\n", p.Name, p.Name)
	}
	b.WriteString("%install\n")
	for _, p := range pkgs {
		p = p.withDefaults()
		for _, f := range p.Files {
			fmt.Fprintf(&b, "mkdir -p %%{buildroot}%s\necho '%s-%s' > %%{buildroot}%s\n", filepath.Dir(f), p.Name, p.EVR(), f)
		}
	}
	for _, p := range pkgs {
		p = p.withDefaults()
		fmt.Fprintf(&b, "\n%%files -n %s\n%s\n", p.Name, strings.Join(p.Files, "\n"))
	}
	return b.String()
}

// Build builds pkgs and returns the rpm paths, in the order of pkgs,
// inside dir. Packages go into as few specs as possible (one rpmbuild run
// each): a spec cannot hold two versions of one name.
func Build(t testing.TB, dir string, pkgs []Package) []string {
	t.Helper()
	NeedTools(t, "rpmbuild")
	var specs [][]Package
	seen := map[string]int{}
	for _, p := range pkgs {
		n := seen[p.Name]
		seen[p.Name]++
		if n == len(specs) {
			specs = append(specs, nil)
		}
		specs[n] = append(specs[n], p)
	}
	for _, sp := range specs {
		buildSpec(t, dir, sp)
	}
	out := make([]string, len(pkgs))
	for i, p := range pkgs {
		out[i] = filepath.Join(dir, p.FileName())
		if _, err := os.Stat(out[i]); err != nil {
			t.Fatalf("rpmbuild did not produce %s: %v", out[i], err)
		}
	}
	return out
}

func buildSpec(t testing.TB, dir string, pkgs []Package) {
	t.Helper()
	top := t.TempDir()
	spec := filepath.Join(top, "fixture.spec")
	if err := os.WriteFile(spec, []byte(Spec(pkgs)), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, []string{"LC_ALL=C"}, "rpmbuild", "--define", "_topdir "+top, "--define", "_rpmdir "+dir,
		"--define", "_build_name_fmt %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm",
		// Skip the brp-* post-install scripts: nothing to strip or
		// byte-compile in these packages, and they dominate build time.
		"--define", "__spec_install_post %{nil}", "--define", "__os_install_post %{nil}",
		"--quiet", "-bb", spec)
}

// DefaultPackages is a small set with every kind of dependency: foo (epoch
// 2) requires bar >= 1.0 (versioned), a file only baz ships (a file
// dependency found in filelists, not primary) and, through qux, a virtual
// provide; lonely has no dependencies at all.
func DefaultPackages() []Package {
	return []Package{
		{Name: "foo", Epoch: 2, Version: "1.0", Release: "1",
			Requires: []string{"bar >= 1.0", "/usr/share/baz/marker", "qux-api >= 2"},
			Provides: []string{"foo-api = 3"}},
		{Name: "bar", Version: "1.2", Release: "1"},
		{Name: "bar", Version: "0.9", Release: "1"},
		{Name: "baz", Version: "1.2", Release: "1", Files: []string{"/usr/share/baz/marker"}},
		{Name: "qux", Version: "2.0", Release: "3", Provides: []string{"qux-api = 2.5"}},
		{Name: "lonely", Version: "0.1", Release: "1"},
	}
}

// RepoOptions selects the createrepo_c variant.
type RepoOptions struct {
	// Compression is createrepo_c's --general-compress-type: gz (the
	// default), xz or bz2. "zstd", which Debian's createrepo_c lacks, is
	// made by recompressing the gz files with the zstd tool.
	Compression string
	Checksum    string // --checksum: sha256 (default), sha1, sha512, ...
	Database    bool   // also generate sqlite databases
	Zchunk      bool   // also generate zchunk metadata
	BaseURL     string // --baseurl: an xml:base on every package location
	// LocationPrefix is prepended to every package href
	// (--location-prefix), e.g. "../" for a hostile repository.
	LocationPrefix string
	UpdateInfo     string // updateinfo.xml content, added with modifyrepo_c
	Modules        string // modules.yaml content, added with modifyrepo_c
	Comps          string // comps.xml content (createrepo_c --groupfile)
	Unsigned       bool   // no repodata/repomd.xml.asc
}

// MakeRepo writes a repository into dir: rpms copied to dir/Packages/,
// metadata made by createrepo_c, repomd.xml signed by s (unless Unsigned).
// Any previous repodata is replaced.
func MakeRepo(t testing.TB, dir string, rpms []string, s *Signer, opt RepoOptions) {
	t.Helper()
	NeedTools(t, "createrepo_c")
	pkgDir := filepath.Join(dir, "Packages")
	if err := os.MkdirAll(pkgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, r := range rpms {
		copyFile(t, r, filepath.Join(pkgDir, filepath.Base(r)))
	}
	os.RemoveAll(filepath.Join(dir, "repodata"))
	zstdVariant := opt.Compression == "zstd"
	if zstdVariant {
		opt.Compression = ""
	}
	args := createrepoArgs(t, dir, opt)
	run(t, []string{"LC_ALL=C"}, "createrepo_c", args...)
	repodata := filepath.Join(dir, "repodata")
	add := func(mdtype, content string) {
		if content == "" {
			return
		}
		src := filepath.Join(t.TempDir(), mdtype+mdExt(mdtype))
		if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		margs := []string{"--mdtype", mdtype}
		if opt.Compression != "" {
			margs = append(margs, "--compress-type", opt.Compression)
		}
		if opt.Checksum != "" {
			margs = append(margs, "--checksum", opt.Checksum)
		}
		run(t, []string{"LC_ALL=C"}, "modifyrepo_c", append(margs, src, repodata)...)
	}
	add("updateinfo", opt.UpdateInfo)
	add("modules", opt.Modules)
	if zstdVariant {
		recompressZstd(t, dir)
	}
	if !opt.Unsigned && s != nil {
		s.DetachSign(t, filepath.Join(repodata, "repomd.xml"))
	}
}

// recompressZstd turns every .gz metadata file of dir's repository into
// .zst (with the zstd tool) and rewrites repomd.xml to match.
func recompressZstd(t testing.TB, dir string) {
	t.Helper()
	NeedTools(t, "zstd")
	repomdPath := filepath.Join(dir, "repodata", "repomd.xml")
	repomd := string(readFile(t, repomdPath))
	blocks := strings.Split(repomd, "<data ")
	hrefRE := regexp.MustCompile(`<location href="([^"]+)"`)
	for i, blk := range blocks[1:] {
		m := hrefRE.FindStringSubmatch(blk)
		if m == nil || !strings.HasSuffix(m[1], ".gz") {
			continue
		}
		blocks[i+1] = recompressBlock(t, dir, blk, m[1])
	}
	if err := os.WriteFile(repomdPath, []byte(strings.Join(blocks, "<data ")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func recompressBlock(t testing.TB, dir, blk, href string) string {
	t.Helper()
	sumType := regexp.MustCompile(`<checksum type="(\w+)"`).FindStringSubmatch(blk)[1]
	oldSum := regexp.MustCompile(`<checksum type="\w+">(\w+)<`).FindStringSubmatch(blk)[1]
	oldPath := filepath.Join(dir, filepath.FromSlash(href))
	plain := run(t, nil, "gzip", "-dc", oldPath)
	tmp := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(tmp, plain, 0o644); err != nil {
		t.Fatal(err)
	}
	packed := run(t, nil, "zstd", "-q", "-c", tmp)
	newSum := hexSum(t, sumType, packed)
	newHref := strings.Replace(strings.TrimSuffix(href, ".gz")+".zst", oldSum, newSum, 1)
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(newHref)), packed, 0o644); err != nil {
		t.Fatal(err)
	}
	os.Remove(oldPath)
	blk = strings.Replace(blk, ">"+oldSum+"<", ">"+newSum+"<", 1)
	blk = strings.Replace(blk, href, newHref, 1)
	return regexp.MustCompile(`<size>\d+</size>`).ReplaceAllString(blk, fmt.Sprintf("<size>%d</size>", len(packed)))
}

func hexSum(t testing.TB, typ string, data []byte) string {
	var h hash.Hash
	switch typ {
	case "sha", "sha1":
		h = sha1.New()
	case "sha256":
		h = sha256.New()
	case "sha512":
		h = sha512.New()
	default:
		t.Fatalf("recompress: checksum type %q not handled", typ)
	}
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func createrepoArgs(t testing.TB, dir string, opt RepoOptions) []string {
	args := []string{"--quiet", "--workers", "2"}
	if opt.Compression != "" {
		args = append(args, "--general-compress-type", opt.Compression)
	}
	if opt.Checksum != "" {
		args = append(args, "--checksum", opt.Checksum)
	}
	if opt.Database {
		args = append(args, "--database")
	} else {
		args = append(args, "--no-database")
	}
	if opt.Zchunk {
		args = append(args, "--zck")
	}
	if opt.BaseURL != "" {
		args = append(args, "--baseurl", opt.BaseURL)
	}
	if opt.LocationPrefix != "" {
		args = append(args, "--location-prefix", opt.LocationPrefix)
	}
	if opt.Comps != "" {
		comps := filepath.Join(t.TempDir(), "comps.xml")
		if err := os.WriteFile(comps, []byte(opt.Comps), 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--groupfile", comps)
	}
	return append(args, dir)
}

func mdExt(mdtype string) string {
	if mdtype == "modules" {
		return ".yaml"
	}
	return ".xml"
}

func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Fixture is a signer and a set of built, signed rpms, ready to be put in
// repositories.
type Fixture struct {
	Signer *Signer
	Dir    string            // where the rpms are
	RPMs   map[string]string // "name-version" → rpm path
	Pkgs   []Package
}

// NewFixture builds and signs pkgs (DefaultPackages when nil).
func NewFixture(t testing.TB, pkgs []Package) *Fixture {
	t.Helper()
	NeedTools(t, "rpmbuild", "rpmsign", "createrepo_c", "modifyrepo_c", "gpg")
	if pkgs == nil {
		pkgs = DefaultPackages()
	}
	f := &Fixture{Signer: NewSigner(t, "Fixture Upstream <upstream@example.org>"), Dir: t.TempDir(), RPMs: map[string]string{}, Pkgs: pkgs}
	paths := Build(t, f.Dir, pkgs)
	f.Signer.SignRPMs(t, paths...)
	for i, p := range pkgs {
		f.RPMs[p.Name+"-"+p.withDefaults().Version] = paths[i]
	}
	return f
}

// All returns every rpm path, sorted.
func (f *Fixture) All() []string {
	var out []string
	for _, p := range f.RPMs {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Repo makes a repository of every rpm of f in a new temp dir.
func (f *Fixture) Repo(t testing.TB, opt RepoOptions) string {
	t.Helper()
	dir := t.TempDir()
	MakeRepo(t, dir, f.All(), f.Signer, opt)
	return dir
}

// Server serves a directory over HTTP on 127.0.0.1. A hook can intercept
// requests (to fail, truncate or count them).
type Server struct {
	*httptest.Server
	Dir      string
	Requests atomic.Int64

	mu    sync.Mutex
	hook  func(w http.ResponseWriter, r *http.Request) bool
	paths map[string]int
}

// Serve serves dir until the test ends.
func Serve(t testing.TB, dir string) *Server {
	s := &Server{Dir: dir, paths: map[string]int{}}
	files := http.FileServer(http.Dir(dir))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Requests.Add(1)
		s.mu.Lock()
		s.paths[r.URL.Path]++
		hook := s.hook
		s.mu.Unlock()
		if hook != nil && hook(w, r) {
			return
		}
		files.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// SetHook installs fn; it handles a request itself by returning true.
func (s *Server) SetHook(fn func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.hook = fn
	s.mu.Unlock()
}

// Hits returns how often each path was requested, and resets the counts.
func (s *Server) Hits() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.paths
	s.paths = map[string]int{}
	return out
}

// BaseURL returns the repository base URL (with a trailing slash).
func (s *Server) BaseURL() string { return s.Server.URL + "/" }

// Truncate answers with the first n bytes of the file but announces its
// full length, then drops the connection: a server dying mid-body.
func Truncate(w http.ResponseWriter, r *http.Request, path string, n int) {
	data, err := os.ReadFile(path)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	w.WriteHeader(http.StatusOK)
	io.Copy(w, bytes.NewReader(data[:min(n, len(data))]))
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			c.Close()
		}
	}
}
