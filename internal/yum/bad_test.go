package yum

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/yum/yumtest"
)

// badCase syncs a healthy source together with a broken one and checks
// that the sync fails with an error saying what is wrong, that no snapshot
// is made, and that the previous snapshot is intact.
type badCase struct {
	t    *testing.T
	f    *yumtest.Fixture
	h    *harness
	good *Source
}

func newBadCase(t *testing.T, f *yumtest.Fixture) *badCase {
	t.Helper()
	h := newHarness(t)
	// The healthy repository shares no file with the broken ones (else
	// the store would already hold the good content and skip the request).
	dir := t.TempDir()
	yumtest.MakeRepo(t, dir, []string{f.RPMs["bar-0.9"]}, f.Signer, yumtest.RepoOptions{})
	srv := yumtest.Serve(t, dir)
	good := newSource(t, srv, f, func(o *Options) { o.Name = "good" })
	h.mustSync(good)
	return &badCase{t: t, f: f, h: h, good: good}
}

// fail expects the sync to fail with an error matching target (when not
// nil) and containing every want string.
func (b *badCase) fail(bad *Source, target error, want ...string) error {
	b.t.Helper()
	before := b.h.snapshots()
	_, err := b.h.sync(b.good, bad)
	if err == nil {
		b.t.Fatalf("sync succeeded, want an error")
	}
	b.t.Logf("error (as the user sees it): %v", err)
	if target != nil && !errors.Is(err, target) {
		b.t.Errorf("error %v\ndoes not wrap %v", err, target)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			b.t.Errorf("error does not mention %q:\n%v", w, err)
		}
	}
	if n := b.h.snapshots(); n != before {
		b.t.Errorf("a failed sync made a snapshot (%d → %d)", before, n)
	}
	b.checkIntact()
	return err
}

// checkIntact verifies every blob of the latest snapshot is still stored.
func (b *badCase) checkIntact() {
	b.t.Helper()
	rec, err := b.h.cat.Latest(context.Background())
	if err != nil {
		b.t.Fatal(err)
	}
	for _, e := range b.h.tree(rec, "good").Entries {
		if _, err := b.h.blobs.Stat(context.Background(), e.Digest); err != nil {
			b.t.Errorf("previous snapshot lost %s: %v", e.Path, err)
		}
	}
}

func TestBadInput(t *testing.T) {
	f := yumtest.NewFixture(t, nil)
	other := yumtest.NewSigner(t, "Someone Else <else@example.org>")

	t.Run("repomd signed by another key", func(t *testing.T) {
		dir := f.Repo(t, yumtest.RepoOptions{})
		other.DetachSign(t, filepath.Join(dir, "repodata", "repomd.xml"))
		srv := yumtest.Serve(t, dir)
		b := newBadCase(t, f)
		b.fail(newSource(t, srv, f, nil), signing.ErrUnknownKey, "repomd.xml.asc", srv.URL, f.Signer.PublicKeyFile, other.Fingerprint)
	})
	t.Run("repomd tampered after signing", func(t *testing.T) {
		dir := f.Repo(t, yumtest.RepoOptions{})
		md := filepath.Join(dir, "repodata", "repomd.xml")
		os.WriteFile(md, append(readFile(t, md), "<!-- tampered -->\n"...), 0o644)
		srv := yumtest.Serve(t, dir)
		b := newBadCase(t, f)
		b.fail(newSource(t, srv, f, nil), signing.ErrBadSignature, "does not verify repomd.xml", srv.URL)
	})
	t.Run("no repomd signature", func(t *testing.T) {
		srv := yumtest.Serve(t, f.Repo(t, yumtest.RepoOptions{Unsigned: true}))
		b := newBadCase(t, f)
		b.fail(newSource(t, srv, f, nil), fetch.ErrNotFound, "repomd.xml.asc is missing", "insecure_skip_verify")
		// The explicit opt-out mirrors it (packages still checked).
		b.h.mustSync(b.good, newSource(t, srv, f, func(o *Options) { o.InsecureSkipVerify = true }))
	})
	t.Run("primary checksum mismatch", func(t *testing.T) {
		dir := f.Repo(t, yumtest.RepoOptions{})
		primary := findFile(t, dir, "-primary.xml.gz")
		data := readFile(t, primary)
		data[len(data)/2] ^= 0xff
		os.WriteFile(primary, data, 0o644)
		srv := yumtest.Serve(t, dir)
		b := newBadCase(t, f)
		b.fail(newSource(t, srv, f, nil), ErrMismatch, "primary metadata", srv.URL, filepath.Base(primary), "expected sha256")
	})
	t.Run("package checksum mismatch", func(t *testing.T) {
		dir := f.Repo(t, yumtest.RepoOptions{})
		rpm := filepath.Join(dir, "Packages", "lonely-0.1-1.noarch.rpm")
		data := readFile(t, rpm)
		data[len(data)-100] ^= 0xff
		os.WriteFile(rpm, data, 0o644)
		srv := yumtest.Serve(t, dir)
		b := newBadCase(t, f)
		b.fail(newSource(t, srv, f, nil), ErrMismatch, "package lonely-0.1-1.noarch", srv.URL+"/Packages/lonely-0.1-1.noarch.rpm", "expected sha256")
	})
	t.Run("sha1 package checksum mismatch", func(t *testing.T) {
		dir := f.Repo(t, yumtest.RepoOptions{Checksum: "sha1"})
		rpm := filepath.Join(dir, "Packages", "lonely-0.1-1.noarch.rpm")
		data := readFile(t, rpm)
		data[len(data)-100] ^= 0xff
		os.WriteFile(rpm, data, 0o644)
		srv := yumtest.Serve(t, dir)
		b := newBadCase(t, f)
		b.fail(newSource(t, srv, f, nil), ErrMismatch, "package lonely-0.1-1.noarch", "expected sha1")
	})
	t.Run("href climbing out with ../", func(t *testing.T) {
		srv := yumtest.Serve(t, f.Repo(t, yumtest.RepoOptions{LocationPrefix: "../"}))
		b := newBadCase(t, f)
		b.fail(newSource(t, srv, f, nil), ErrUnsafeLocation, `"../Packages/`, "refusing")
	})
	t.Run("xml:base off the upstream", func(t *testing.T) {
		srv := yumtest.Serve(t, f.Repo(t, yumtest.RepoOptions{BaseURL: "http://evil.invalid/repo/"}))
		b := newBadCase(t, f)
		b.fail(newSource(t, srv, f, nil), ErrUnsafeLocation, "http://evil.invalid/repo/", "points off the upstream")
		// Filtered mirrors rewrite locations, but still refuse it.
		b.fail(newSource(t, srv, f, func(o *Options) { o.Verbatim, o.Filter = false, []string{"foo"} }), ErrUnsafeLocation, "points off the upstream")
	})
	t.Run("repomd.xml truncated", func(t *testing.T) {
		dir := f.Repo(t, yumtest.RepoOptions{})
		md := filepath.Join(dir, "repodata", "repomd.xml")
		data := readFile(t, md)
		os.WriteFile(md, data[:len(data)/2], 0o644)
		f.Signer.DetachSign(t, md)
		srv := yumtest.Serve(t, dir)
		b := newBadCase(t, f)
		b.fail(newSource(t, srv, f, nil), ErrBadMetadata, "repomd.xml", srv.URL)
	})
	t.Run("primary truncated in transfer", func(t *testing.T) {
		dir := f.Repo(t, yumtest.RepoOptions{})
		primary := findFile(t, dir, "-primary.xml.gz")
		srv := yumtest.Serve(t, dir)
		srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if strings.HasSuffix(r.URL.Path, "-primary.xml.gz") {
				yumtest.Truncate(w, r, primary, 100)
				return true
			}
			return false
		})
		b := newBadCase(t, f)
		b.fail(newSource(t, srv, f, nil), fetch.ErrTruncated, "primary metadata", filepath.Base(primary))
	})
}

func TestUpstreamDiesMidSyncThenRecovers(t *testing.T) {
	f := yumtest.NewFixture(t, nil)
	srv := yumtest.Serve(t, f.Repo(t, yumtest.RepoOptions{}))
	var served atomic.Int64
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasPrefix(r.URL.Path, "/Packages/") && served.Add(1) > 2 {
			// The server is gone: connections are cut before any answer.
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					c.Close()
				}
			}
			return true
		}
		return false
	})
	h := newHarness(t)
	src := newSource(t, srv, f, nil)
	_, err := h.sync(src)
	if err == nil || !strings.Contains(err.Error(), "/Packages/") || !strings.Contains(err.Error(), "gave up after") {
		t.Fatalf("sync against a dying upstream: err = %v, want a fetch failure naming the package URL", err)
	}
	if n := h.snapshots(); n != 0 {
		t.Fatalf("failed sync made %d snapshots", n)
	}
	srv.SetHook(nil)
	rec := h.mustSync(src)
	if got := len(h.tree(rec, "fixture").Entries); got < len(f.RPMs)+4 {
		t.Errorf("recovered sync has %d files, want every package and the metadata", got)
	}
}

func TestUpstreamChangesMidSync(t *testing.T) {
	f := yumtest.NewFixture(t, nil)
	full := f.Repo(t, yumtest.RepoOptions{})
	var fewer []string
	for _, p := range f.All() {
		if !strings.Contains(p, "lonely") {
			fewer = append(fewer, p)
		}
	}
	smaller := t.TempDir()
	yumtest.MakeRepo(t, smaller, fewer, f.Signer, yumtest.RepoOptions{})

	// The upstream switches repositories whenever primary is requested:
	// the primary the client pinned is then gone (404).
	var cur atomic.Pointer[string]
	cur.Store(&full)
	flips := atomic.Int64{}
	maxFlips := int64(1)
	srv := yumtest.Serve(t, full)
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		dir := *cur.Load()
		if strings.HasSuffix(r.URL.Path, "-primary.xml.gz") && flips.Load() < maxFlips {
			flips.Add(1)
			next := smaller
			if dir == smaller {
				next = full
			}
			cur.Store(&next)
			http.NotFound(w, r)
			return true
		}
		http.ServeFile(w, r, filepath.Join(dir, filepath.FromSlash(r.URL.Path)))
		return true
	})
	h := newHarness(t)
	src := newSource(t, srv, f, nil)
	rec := h.mustSync(src)
	if _, ok := h.tree(rec, "fixture").Lookup("Packages/lonely-0.1-1.noarch.rpm"); ok {
		t.Error("the re-pinned snapshot still has lonely, which the new upstream state dropped")
	}
	if !strings.Contains(h.log.String(), "re-pinning") {
		t.Errorf("no re-pin in the log:\n%s", h.log.String())
	}

	// An upstream that keeps changing fails clearly after one re-pin.
	cur.Store(&full)
	flips.Store(0)
	maxFlips = 100
	h2 := newHarness(t)
	_, err := h2.sync(src)
	if err == nil || !strings.Contains(err.Error(), "changed again during the sync") || !errors.Is(err, fetch.ErrNotFound) {
		t.Fatalf("err = %v, want a clear 'changed again' failure", err)
	}
	if h2.snapshots() != 0 {
		t.Error("a failed sync made a snapshot")
	}
}

func TestPackageSignatureChecks(t *testing.T) {
	f := yumtest.NewFixture(t, nil)
	t.Run("signed by a key not in gpgkey", func(t *testing.T) {
		other := yumtest.NewSigner(t, "Other Packager <pkg@example.org>")
		rpms := yumtest.Build(t, t.TempDir(), []yumtest.Package{{Name: "stranger"}})
		other.SignRPMs(t, rpms...)
		dir := t.TempDir()
		yumtest.MakeRepo(t, dir, append(f.All(), rpms...), f.Signer, yumtest.RepoOptions{})
		srv := yumtest.Serve(t, dir)
		b := newBadCase(t, f)
		b.fail(newSource(t, srv, f, nil), ErrBadPackage, "stranger-1.0-1.noarch", "not in gpgkey")
	})
	t.Run("unsigned", func(t *testing.T) {
		rpms := yumtest.Build(t, t.TempDir(), []yumtest.Package{{Name: "unsigned"}})
		dir := t.TempDir()
		yumtest.MakeRepo(t, dir, append(f.All(), rpms...), f.Signer, yumtest.RepoOptions{})
		srv := yumtest.Serve(t, dir)
		b := newBadCase(t, f)
		b.fail(newSource(t, srv, f, nil), ErrBadPackage, "unsigned-1.0-1.noarch", "not signed")
		// Without a gpgkey (explicit opt-out) only digests are checked.
		h := newHarness(t)
		h.mustSync(newSource(t, srv, f, func(o *Options) { o.GPGKey, o.InsecureSkipVerify = "", true }))
	})
}

// findFile returns the one file under dir whose name ends with suffix.
func findFile(t *testing.T, dir, suffix string) string {
	t.Helper()
	var found []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, suffix) {
			found = append(found, p)
		}
		return nil
	})
	if len(found) != 1 {
		t.Fatalf("%d files ending in %s under %s", len(found), suffix, dir)
	}
	return found[0]
}

// A body cut short is retried for sha1 repositories too (they are
// streamed through a checking reader, not the fetcher's Blob).
func TestSHA1TransferCutOnceIsRetried(t *testing.T) {
	f := yumtest.NewFixture(t, []yumtest.Package{{Name: "one"}})
	dir := f.Repo(t, yumtest.RepoOptions{Checksum: "sha1"})
	srv := yumtest.Serve(t, dir)
	var cut atomic.Bool
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if strings.HasSuffix(r.URL.Path, ".rpm") && cut.CompareAndSwap(false, true) {
			yumtest.Truncate(w, r, filepath.Join(dir, filepath.FromSlash(r.URL.Path)), 100)
			return true
		}
		return false
	})
	h := newHarness(t)
	rec := h.mustSync(newSource(t, srv, f, nil))
	if !cut.Load() {
		t.Fatal("the package was never cut")
	}
	if got := h.file(rec, "fixture", "Packages/one-1.0-1.noarch.rpm"); !bytes.Equal(got, readFile(t, filepath.Join(dir, "Packages/one-1.0-1.noarch.rpm"))) {
		t.Error("mirrored package differs from upstream")
	}
}
