package apttest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options shape a repository. Zero fields take the defaults noted.
type Options struct {
	Suites        []string // default ["stable"]; the Codename is "SUITE-code"
	Components    []string // default ["main"]
	Architectures []string // default ["amd64"]
	Origin, Label string   // default "apttest"
	// Compressions of every Packages index: "" (plain), ".gz", ".xz",
	// ".bz2", ".zst". Default: plain, .gz and .xz.
	Compressions []string
	// Key signs the repository; default a fresh key.
	Key *Key
	// NoInRelease publishes only Release + Release.gpg.
	NoInRelease bool
	// ByHash also publishes by-hash copies and says Acquire-By-Hash: yes.
	ByHash bool
	// Date is the Release Date; default 2024-01-02 03:04:05 UTC.
	Date time.Time
	// Debs, when set, caches built packages across repositories.
	Debs *DebCache
	// ReleaseArgs are extra apt-ftparchive options for the Release file,
	// e.g. "-o", "APT::FTPArchive::SHA256=false".
	ReleaseArgs []string
}

// Repo is a signed apt repository in a directory, served over HTTP.
type Repo struct {
	Dir string // repository root (holds dists/ and pool/)
	URL string // the root's URL, without a trailing slash
	Key *Key

	opt  Options
	srv  *httptest.Server
	debs []Deb

	mu    sync.Mutex
	hook  func(w http.ResponseWriter, r *http.Request) bool
	count map[string]int
}

// New creates an empty repository and serves it on 127.0.0.1 until t ends.
// Call Add and Publish to fill it.
func New(t testing.TB, opt Options) *Repo {
	t.Helper()
	Need(t, "dpkg-deb", "apt-ftparchive", "gpg", "xz")
	if len(opt.Suites) == 0 {
		opt.Suites = []string{"stable"}
	}
	if len(opt.Components) == 0 {
		opt.Components = []string{"main"}
	}
	if len(opt.Architectures) == 0 {
		opt.Architectures = []string{"amd64"}
	}
	if opt.Origin == "" {
		opt.Origin = "apttest"
	}
	if opt.Label == "" {
		opt.Label = "apttest"
	}
	if opt.Compressions == nil {
		opt.Compressions = []string{"", ".gz", ".xz"}
	}
	if opt.Date.IsZero() {
		opt.Date = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	}
	if opt.Key == nil {
		opt.Key = NewKey(t, "apttest upstream")
	}
	r := &Repo{Dir: t.TempDir(), Key: opt.Key, opt: opt, count: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.URL = r.srv.URL
	return r
}

// Options returns the repository's options with defaults filled in.
func (r *Repo) Options() Options { return r.opt }

func (r *Repo) serve(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.count[req.URL.Path]++
	hook := r.hook
	r.mu.Unlock()
	if hook != nil && hook(w, req) {
		return
	}
	http.FileServer(http.Dir(r.Dir)).ServeHTTP(w, req)
}

// SetHook installs h in front of the file server: when it returns true it
// has answered the request itself. nil removes it.
func (r *Repo) SetHook(h func(w http.ResponseWriter, req *http.Request) bool) {
	r.mu.Lock()
	r.hook = h
	r.mu.Unlock()
}

// Requests returns how many requests paths starting with prefix got
// (prefix is a URL path, e.g. "/pool/").
func (r *Repo) Requests(prefix string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for p, c := range r.count {
		if strings.HasPrefix(p, prefix) {
			n += c
		}
	}
	return n
}

// WaitQuiet returns once the request count under prefix has not changed
// for 300 ms: requests a failed (or killed) client had already sent can
// still reach the server after it gave up, and must not be counted against
// the next client.
func (r *Repo) WaitQuiet(prefix string) {
	last := r.Requests(prefix)
	for quiet := 0; quiet < 6; {
		time.Sleep(50 * time.Millisecond)
		if n := r.Requests(prefix); n != last {
			last, quiet = n, 0
			continue
		}
		quiet++
	}
}

// ResetRequests zeroes the request counters.
func (r *Repo) ResetRequests() {
	r.mu.Lock()
	r.count = map[string]int{}
	r.mu.Unlock()
}

// Add builds the packages into the pool. They appear in the indices at
// the next Publish.
func (r *Repo) Add(t testing.TB, pkgs ...Package) {
	t.Helper()
	for _, p := range pkgs {
		p.defaults(r)
		r.debs = slices.DeleteFunc(r.debs, func(d Deb) bool {
			return d.Name == p.Name && d.Version == p.Version && d.Arch == p.Arch && d.Suite == p.Suite
		})
		r.debs = append(r.debs, p.build(t, r.Dir, r.opt.Debs))
	}
}

// Remove drops a package (every architecture) from the indices at the
// next Publish; its file stays in the pool.
func (r *Repo) Remove(name, version string) {
	r.debs = slices.DeleteFunc(r.debs, func(d Deb) bool { return d.Name == name && d.Version == version })
}

// Deb returns a built package; an empty version or arch matches any.
func (r *Repo) Deb(t testing.TB, name, version, arch string) Deb {
	t.Helper()
	for _, d := range r.debs {
		if d.Name == name && (version == "" || d.Version == version) && (arch == "" || d.Arch == arch) {
			return d
		}
	}
	t.Fatalf("apttest: no package %s %s %s", name, version, arch)
	return Deb{}
}

// Debs returns every package in the indices.
func (r *Repo) Debs() []Deb { return slices.Clone(r.debs) }

// Publish (re)writes every suite's indices with apt-ftparchive, then its
// Release, signed with the repository key.
func (r *Repo) Publish(t testing.TB) {
	t.Helper()
	scans := map[string][]byte{} // "COMP/ARCH" → apt-ftparchive output
	for _, suite := range r.opt.Suites {
		dist := filepath.Join(r.Dir, "dists", suite)
		if err := os.RemoveAll(dist); err != nil {
			t.Fatal(err)
		}
		for _, comp := range r.opt.Components {
			for _, arch := range r.opt.Architectures {
				key := comp + "/" + arch
				if _, ok := scans[key]; !ok {
					scans[key] = r.scan(t, comp, arch)
				}
				body := r.forSuite(scans[key], suite, false)
				r.WriteIndex(t, path.Join("dists", suite, comp, "binary-"+arch, "Packages"), body)
				if r.hasUdebs(comp) {
					r.WriteIndex(t, path.Join("dists", suite, comp, "debian-installer", "binary-"+arch, "Packages"), r.forSuite(scans[key], suite, true))
				}
			}
			if r.hasSources(comp) {
				body := run(t, r.Dir, nil, "apt-ftparchive", "sources", "pool/"+comp)
				r.WriteIndex(t, path.Join("dists", suite, comp, "source", "Sources"), body)
			}
		}
		r.Release(t, suite)
	}
}

// AddSource writes a source package (a .dsc and an upstream tarball of
// the given content) into the pool of the first component; Publish then
// lists it in every suite's Sources index.
func (r *Repo) AddSource(t testing.TB, name, version string, tarball []byte) {
	t.Helper()
	dir := path.Join("pool", r.opt.Components[0], name[:1], name)
	tar := name + "_" + version + ".tar.xz"
	r.WriteFile(t, path.Join(dir, tar), tarball)
	sum := sha256Sum(tarball)
	dsc := fmt.Sprintf("Format: 3.0 (native)\nSource: %s\nBinary: %s\nArchitecture: any\nVersion: %s\nMaintainer: apttest <apttest@example.invalid>\n"+
		"Standards-Version: 4.6.2\nPackage-List:\n %s deb misc optional arch=any\nChecksums-Sha256:\n %x %d %s\nFiles:\n %x %d %s\n",
		name, name, version, name, sum, len(tarball), tar, md5Sum(tarball), len(tarball), tar)
	r.WriteFile(t, path.Join(dir, name+"_"+version+".dsc"), []byte(dsc))
}

func (r *Repo) hasUdebs(comp string) bool {
	return slices.ContainsFunc(r.debs, func(d Deb) bool { return d.Udeb && d.Component == comp })
}

// FTPArchive runs apt-ftparchive in the repository root (e.g. "contents",
// "pool/main") and returns its output.
func (r *Repo) FTPArchive(t testing.TB, args ...string) []byte {
	t.Helper()
	return run(t, r.Dir, nil, "apt-ftparchive", args...)
}

func (r *Repo) hasSources(comp string) bool {
	found := false
	filepath.WalkDir(filepath.Join(r.Dir, "pool", comp), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".dsc") {
			found = true
		}
		return nil
	})
	return found
}

// scan runs apt-ftparchive over the component's pool for arch (which
// includes arch "all").
func (r *Repo) scan(t testing.TB, comp, arch string) []byte {
	t.Helper()
	if _, err := os.Stat(filepath.Join(r.Dir, "pool", comp)); err != nil {
		return nil
	}
	return run(t, r.Dir, nil, "apt-ftparchive", "--arch", arch, "packages", "pool/"+comp)
}

// forSuite keeps the stanzas of packages published in suite: the udebs
// (apt-ftparchive packages lists .deb and .udeb alike), or the others.
func (r *Repo) forSuite(scan []byte, suite string, udebs bool) []byte {
	want := map[string]bool{}
	for _, d := range r.debs {
		if d.Suite == suite && d.Udeb == udebs {
			want[d.Filename] = true
		}
	}
	var out bytes.Buffer
	for _, stanza := range bytes.Split(scan, []byte("\n\n")) {
		if len(bytes.TrimSpace(stanza)) == 0 {
			continue
		}
		sc := bufio.NewScanner(bytes.NewReader(stanza))
		for sc.Scan() {
			if f, ok := strings.CutPrefix(sc.Text(), "Filename: "); ok && want[f] {
				out.Write(bytes.TrimSpace(stanza))
				out.WriteString("\n\n")
			}
		}
	}
	return out.Bytes()
}

// WriteIndex writes an index (path relative to the root, without
// compression suffix) in every configured compression; plain only when
// "" is one of them. Call Release afterwards to re-sign.
func (r *Repo) WriteIndex(t testing.TB, rel string, body []byte) {
	t.Helper()
	for _, c := range r.opt.Compressions {
		r.WriteFile(t, rel+c, Compress(t, c, body))
	}
}

// Compress returns body compressed by suffix ("", ".gz", ".xz", ".bz2",
// ".zst") with the real tools (gzip via compress/gzip, without a name or
// time, as dpkg-dev writes it).
func Compress(t testing.TB, suffix string, body []byte) []byte {
	t.Helper()
	tool := map[string][]string{".xz": {"xz", "-c", "-6"}, ".bz2": {"bzip2", "-c"}, ".zst": {"zstd", "-q", "-c", "-19"}}
	switch suffix {
	case "":
		return body
	case ".gz":
		var b bytes.Buffer
		w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		w.Write(body)
		w.Close()
		return b.Bytes()
	}
	args, ok := tool[suffix]
	if !ok {
		t.Fatalf("apttest: unknown compression %q", suffix)
	}
	Need(t, args[0])
	tmp := filepath.Join(t.TempDir(), "in")
	writeFile(t, tmp, body)
	return run(t, "", nil, args[0], append(args[1:], tmp)...)
}

// WriteFile writes a file below the repository root.
func (r *Repo) WriteFile(t testing.TB, rel string, data []byte) {
	t.Helper()
	writeFile(t, filepath.Join(r.Dir, filepath.FromSlash(rel)), data)
}

// ReadFile reads a file below the repository root.
func (r *Repo) ReadFile(t testing.TB, rel string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(r.Dir, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Release writes dists/SUITE/Release from the files under it with
// apt-ftparchive, and signs it into InRelease and Release.gpg.
func (r *Repo) Release(t testing.TB, suite string) {
	t.Helper()
	dist := filepath.Join(r.Dir, "dists", suite)
	for _, f := range []string{"Release", "InRelease", "Release.gpg"} {
		os.Remove(filepath.Join(dist, f))
	}
	os.RemoveAll(filepath.Join(dist, "by-hash"))
	if r.opt.ByHash {
		r.byHash(t, dist)
	}
	args := []string{
		"-o", "APT::FTPArchive::Release::Origin=" + r.opt.Origin,
		"-o", "APT::FTPArchive::Release::Label=" + r.opt.Label,
		"-o", "APT::FTPArchive::Release::Suite=" + suite,
		"-o", "APT::FTPArchive::Release::Codename=" + suite + "-code",
		"-o", "APT::FTPArchive::Release::Version=12.0",
		"-o", "APT::FTPArchive::Release::Date=" + r.opt.Date.UTC().Format(time.RFC1123Z),
		"-o", "APT::FTPArchive::Release::Architectures=" + strings.Join(r.opt.Architectures, " "),
		"-o", "APT::FTPArchive::Release::Components=" + strings.Join(r.opt.Components, " "),
		"-o", "APT::FTPArchive::Release::Description=apttest fixture " + suite,
	}
	if r.opt.ByHash {
		args = append(args, "-o", "APT::FTPArchive::Release::Acquire-By-Hash=yes")
	}
	args = append(append(args, r.opt.ReleaseArgs...), "release", ".")
	rel := run(t, dist, nil, "apt-ftparchive", args...)
	r.WriteFile(t, path.Join("dists", suite, "Release"), rel)
	if !r.opt.NoInRelease {
		r.WriteFile(t, path.Join("dists", suite, "InRelease"), r.Key.ClearSign(t, rel))
	}
	r.WriteFile(t, path.Join("dists", suite, "Release.gpg"), r.Key.DetachSign(t, rel))
}

// byHash copies every index below dist into its directory's
// by-hash/SHA256/<hex>.
func (r *Repo) byHash(t testing.TB, dist string) {
	t.Helper()
	err := filepath.WalkDir(dist, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.Contains(p, "/by-hash/") {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		writeFile(t, filepath.Join(filepath.Dir(p), "by-hash", "SHA256", fmt.Sprintf("%x", sha256Sum(data))), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
