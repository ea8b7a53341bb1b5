package apt

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/store"
)

// expectFailure syncs and checks that the sync failed (no snapshot: the
// harness checks that) with an error mentioning every want.
func expectFailure(t *testing.T, m *mirror, src *Source, wants ...string) error {
	t.Helper()
	_, err := m.sync(src)
	if err == nil {
		t.Fatal("sync succeeded, want an error")
	}
	t.Logf("error (as expected): %v", err)
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q\ndoes not mention %q", err, w)
		}
	}
	return err
}

// rewritePackages replaces the amd64 Packages index (every compression)
// with edit(old) and re-signs the Release.
func rewritePackages(t *testing.T, up *apttest.Repo, edit func([]byte) []byte) {
	t.Helper()
	rel := "dists/stable/main/binary-amd64/Packages"
	up.WriteIndex(t, rel, edit(up.ReadFile(t, rel)))
	up.Release(t, "stable")
}

func TestTamperedInRelease(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	in := up.ReadFile(t, "dists/stable/InRelease")
	up.WriteFile(t, "dists/stable/InRelease", bytes.Replace(in, []byte("Origin: apttest"), []byte("Origin: evil"), 1))
	m := newMirror(t)
	err := expectFailure(t, m, newSource(t, aptConfig(up, nil)), up.URL+"/dists/stable/InRelease", "signature check", up.Key.Keyring, "does not match")
	if !errors.Is(err, signing.ErrBadSignature) {
		t.Errorf("error does not wrap ErrBadSignature: %v", err)
	}
}

func TestWrongKey(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	other := apttest.NewKey(t, "someone else")
	m := newMirror(t)
	err := expectFailure(t, m, newSource(t, aptConfig(up, func(c *config.AptSource) { c.Keyring = other.Keyring })),
		"InRelease", other.Keyring, "not in keyring", "rotated")
	if !errors.Is(err, signing.ErrUnknownKey) {
		t.Errorf("error does not wrap ErrUnknownKey: %v", err)
	}
}

// Without InRelease, Release + Release.gpg are used and verified.
func TestDetachedReleaseFallback(t *testing.T) {
	up := demoRepo(t, apttest.Options{NoInRelease: true})
	m := newMirror(t)
	m.mustSync(newSource(t, aptConfig(up, nil)))
	rel := up.ReadFile(t, "dists/stable/Release")
	up.WriteFile(t, "dists/stable/Release", bytes.Replace(rel, []byte("Label: apttest"), []byte("Label: evilxx"), 1))
	expectFailure(t, m, newSource(t, aptConfig(up, nil)), "Release.gpg", "signature check")
}

func TestPackagesHashDiffersFromRelease(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	p := "dists/stable/main/binary-amd64/Packages.xz"
	m := newMirror(t)
	// Same size, other content: the SHA256 check catches it.
	xz := up.ReadFile(t, p)
	xz[len(xz)/2] ^= 0xff
	up.WriteFile(t, p, xz)
	err := expectFailure(t, m, newSource(t, aptConfig(up, nil)), p, "the Release lists sha256", "sha256 mismatch", "retry later")
	if !errors.Is(err, store.ErrDigestMismatch) {
		t.Errorf("not a digest mismatch: %v", err)
	}
	// Changed after signing (another size): caught before downloading.
	plain := bytes.Replace(up.ReadFile(t, "dists/stable/main/binary-amd64/Packages"), []byte("Version: 1.0-1"), []byte("Version: 6.6.6-1"), 1)
	up.WriteFile(t, p, apttest.Compress(t, ".xz", plain))
	err = expectFailure(t, m, newSource(t, aptConfig(up, nil)), p, "size mismatch", "does not match its index")
	if !errors.Is(err, store.ErrSizeMismatch) {
		t.Errorf("not a size mismatch: %v", err)
	}
}

func TestDebWithWrongSHA256(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	d := up.Deb(t, "demo-lib", "1.2~rc1-1", "")
	bad := bytes.Clone(d.Data)
	bad[len(bad)-1] ^= 0xff // same size, different content
	up.WriteFile(t, d.Filename, bad)
	m := newMirror(t)
	err := expectFailure(t, m, newSource(t, aptConfig(up, nil)), d.Filename, d.SHA256, "sha256 mismatch")
	if !errors.Is(err, store.ErrDigestMismatch) {
		t.Errorf("not a digest mismatch: %v", err)
	}
	if _, err := m.cat.Store().Blobs().Stat(context.Background(), store.DigestOf(bad)); !store.IsNotExist(err) {
		t.Errorf("the bad file became visible in the store: %v", err)
	}
}

func TestFilenameEscapingRepository(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	rewritePackages(t, up, func(b []byte) []byte {
		i := bytes.Index(b, []byte("Filename: pool/"))
		j := bytes.IndexByte(b[i:], '\n') + i
		return append(append(b[:i:i], "Filename: ../../x"...), b[j:]...)
	})
	m := newMirror(t)
	expectFailure(t, m, newSource(t, aptConfig(up, nil)), `Filename "../../x"`, "malformed or malicious", "main/binary-amd64/Packages")
}

func TestPackagesBomb(t *testing.T) {
	up := demoRepo(t, apttest.Options{Compressions: []string{"", ".gz"}})
	blank := bytes.Repeat(append(bytes.Repeat([]byte(" "), 1023), '\n'), 4<<10) // 4 MiB of blank lines: parses, compresses to little
	rewritePackages(t, up, func(b []byte) []byte { return append(b, blank...) })
	src, err := New(aptConfig(up, nil), Options{MaxIndexSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	m := newMirror(t)
	err = expectFailure(t, m, src, "Packages.gz", "decompresses to more than 1048576 bytes")
	if !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("error does not wrap ErrTooLarge: %v", err)
	}
}

func TestTruncatedXZ(t *testing.T) {
	up := demoRepo(t, apttest.Options{Compressions: []string{".xz"}})
	p := "dists/stable/main/binary-amd64/Packages.xz"
	xz := up.ReadFile(t, p)
	up.WriteFile(t, p, xz[:len(xz)*2/3])
	up.Release(t, "stable") // the Release agrees with the truncated file
	m := newMirror(t)
	expectFailure(t, m, newSource(t, aptConfig(up, nil)), "Packages.xz", "decompressing .xz")
}

func TestMD5OnlyRelease(t *testing.T) {
	up := apttest.New(t, apttest.Options{ReleaseArgs: []string{"-o", "APT::FTPArchive::SHA256=false", "-o", "APT::FTPArchive::SHA512=false"}})
	up.Add(t, apttest.Demo()[:1]...)
	up.Publish(t)
	m := newMirror(t)
	expectFailure(t, m, newSource(t, aptConfig(up, nil)), "InRelease", "no SHA256", "MD5Sum")
}

func TestMissingArchitecture(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	m := newMirror(t)
	expectFailure(t, m, newSource(t, aptConfig(up, func(c *config.AptSource) { c.Architectures = []string{"arm64"} })),
		"lists no main/binary-arm64/Packages", "main/binary-amd64")
}

func TestNoKeyringIsRefused(t *testing.T) {
	_, err := New(config.AptSource{Name: "x", URL: "http://127.0.0.1/", Suites: []string{"s"}, Components: []string{"main"}}, Options{})
	if err == nil || !strings.Contains(err.Error(), "insecure_skip_verify") {
		t.Errorf("New without keyring: %v", err)
	}
}

// The upstream dies after serving a few pool files: the sync fails and
// makes no snapshot; the next sync succeeds and fetches only the files
// not stored by the first.
func TestUpstreamDiesMidSync(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	var served atomic.Int32
	up.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if !strings.HasPrefix(r.URL.Path, "/pool/") || served.Add(1) <= 3 {
			return false
		}
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close() // the connection dies without a response
		}
		return true
	})
	m := newMirror(t)
	src := newSource(t, aptConfig(up, nil))
	expectFailure(t, m, src, "pool/main/")
	stored := map[string]bool{}
	for _, d := range up.Debs() {
		if _, err := m.cat.Store().Blobs().Stat(context.Background(), store.Digest(d.SHA256)); err == nil {
			stored[d.Filename] = true
		}
	}
	if len(stored) == 0 {
		t.Fatal("nothing was stored before the upstream died")
	}
	// Requests the failed sync had sent before it gave up can still reach
	// the server; let them land before counting the next sync's.
	up.WaitQuiet("/pool/")
	up.SetHook(nil)
	up.ResetRequests()
	m.mustSync(src)
	for _, d := range up.Debs() {
		n := up.Requests("/" + d.Filename)
		if stored[d.Filename] && n != 0 {
			t.Errorf("%s was stored by the failed sync but fetched again", d.Filename)
		}
		if !stored[d.Filename] && n != 1 {
			t.Errorf("%s: %d requests, want 1", d.Filename, n)
		}
	}
}
