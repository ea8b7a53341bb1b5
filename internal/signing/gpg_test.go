package signing

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/mirrord/mirrord/internal/requiretool"
)

// gnupg is a throwaway GnuPG home for interoperability tests.
type gnupg struct {
	t    *testing.T
	home string
}

// newGnuPG needs the real gpg: skipped without it, except in CI where a
// missing gpg must not silently disable these tests.
func newGnuPG(t *testing.T) *gnupg {
	t.Helper()
	requiretool.All(t, "gpg", "gpgv")
	g := &gnupg{t: t, home: t.TempDir()}
	if err := os.Chmod(g.home, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Stop the agent that key generation and signing started.
		exec.Command("gpgconf", "--homedir", g.home, "--kill", "gpg-agent").Run()
	})
	return g
}

// run runs gpg (or gpgv) with the test home and returns status-fd output.
func (g *gnupg) run(tool string, args ...string) (string, error) {
	g.t.Helper()
	base := []string{"--homedir", g.home, "--status-fd", "1"}
	if tool == "gpg" {
		base = append(base, "--batch", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", "")
	}
	cmd := exec.Command(tool, append(base, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+g.home, "LC_ALL=C")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String(), errors.New(err.Error() + ": " + stderr.String())
	}
	return stdout.String(), nil
}

func (g *gnupg) must(tool string, args ...string) string {
	g.t.Helper()
	out, err := g.run(tool, args...)
	if err != nil {
		g.t.Fatalf("%s %s: %v", tool, strings.Join(args, " "), err)
	}
	return out
}

func (g *gnupg) file(name string, data []byte) string {
	g.t.Helper()
	path := filepath.Join(g.home, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		g.t.Fatal(err)
	}
	return path
}

func (g *gnupg) read(path string) []byte {
	g.t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		g.t.Fatal(err)
	}
	return data
}

// wantValid checks gpg's status output for a valid signature by fpr.
func wantValid(t *testing.T, what, out, fpr string) {
	t.Helper()
	if !strings.Contains(out, "[GNUPG:] VALIDSIG "+fpr) {
		t.Errorf("%s: no VALIDSIG %s in gpg status:\n%s", what, fpr, out)
	}
}

func TestGnuPGVerifiesOurSignatures(t *testing.T) {
	g := newGnuPG(t)
	k, _ := testKey(t)
	g.must("gpg", "--import", g.file("mirrord.asc", k.PublicArmored()))
	keyring := g.file("mirrord.gpg", k.PublicBinary())

	inRelease, err := k.ClearSign([]byte(release))
	if err != nil {
		t.Fatal(err)
	}
	in := g.file("InRelease", inRelease)
	wantValid(t, "gpg --verify InRelease", g.must("gpg", "--verify", in), k.Fingerprint())
	wantValid(t, "gpgv InRelease", g.must("gpgv", "--keyring", keyring, in), k.Fingerprint())
	out := g.file("Release.out", nil)
	g.must("gpgv", "--keyring", keyring, "--output", out, in)
	if got := string(g.read(out)); strings.TrimSuffix(got, "\n") != strings.TrimSuffix(release, "\n") {
		t.Errorf("gpgv --output extracted:\n%q\nwant\n%q", got, release)
	}

	sig, err := k.DetachSign([]byte(release))
	if err != nil {
		t.Fatal(err)
	}
	rel := g.file("Release", []byte(release))
	sigPath := g.file("Release.gpg", sig)
	wantValid(t, "gpg --verify Release.gpg", g.must("gpg", "--verify", sigPath, rel), k.Fingerprint())
	wantValid(t, "gpgv Release.gpg", g.must("gpgv", "--keyring", keyring, sigPath, rel), k.Fingerprint())

	bad := g.file("Release.bad", []byte(release+"Extra: field\n"))
	if out, err := g.run("gpgv", "--keyring", keyring, sigPath, bad); err == nil {
		t.Errorf("gpgv accepted a signature over tampered data:\n%s", out)
	}
	badIn := g.file("InRelease.bad", bytes.Replace(inRelease, []byte("stable"), []byte("stabel"), 1))
	if out, err := g.run("gpgv", "--keyring", keyring, badIn); err == nil {
		t.Errorf("gpgv accepted a tampered InRelease:\n%s", out)
	}
}

// gpgKey generates a key with real gpg and returns its fingerprint.
func (g *gnupg) gpgKey(uid, algo string, usage ...string) string {
	g.t.Helper()
	if usage == nil {
		usage = []string{"sign"}
	}
	out := g.must("gpg", "--quick-gen-key", uid, algo, strings.Join(usage, ","), "never")
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[1] == "KEY_CREATED" {
			return f[3]
		}
	}
	g.t.Fatalf("no KEY_CREATED in gpg output:\n%s", out)
	return ""
}

func TestWeVerifyGnuPGSignatures(t *testing.T) {
	g := newGnuPG(t)
	ours, _ := testKey(t)
	fprs := map[string]string{
		"rsa3072": g.gpgKey("Upstream RSA <rsa@example.org>", "rsa3072"),
		"ed25519": g.gpgKey("Upstream Ed <ed@example.org>", "ed25519"),
	}
	binRing := g.file("upstream.gpg", nil)
	g.must("gpg", "--yes", "--output", binRing, "--export")
	ascRing := g.file("upstream.asc", nil)
	g.must("gpg", "--yes", "--armor", "--output", ascRing, "--export")
	data := g.file("Release", []byte(release))

	for _, ringPath := range []string{binRing, ascRing} {
		keyring, err := ReadKeyring(ringPath)
		if err != nil {
			t.Fatal(err)
		}
		if len(keyring) != 2 {
			t.Fatalf("%s: %d keys, want 2", ringPath, len(keyring))
		}
		for algo, fpr := range fprs {
			checkGnuPGSigs(t, g, keyring, ours, data, algo, fpr)
		}
	}
}

func checkGnuPGSigs(t *testing.T, g *gnupg, keyring openpgp.EntityList, ours *Key, data, algo, fpr string) {
	t.Helper()
	clear := filepath.Join(g.home, "InRelease."+algo)
	g.must("gpg", "--yes", "--local-user", fpr, "--output", clear, "--clearsign", data)
	plain, signer, err := VerifyClearSigned(keyring, g.read(clear))
	if err != nil {
		t.Fatalf("%s clearsigned by gpg: %v", algo, err)
	}
	if fingerprint(signer) != fpr || string(plain) != release {
		t.Errorf("%s clearsigned by gpg: signer %s plaintext %q", algo, fingerprint(signer), plain)
	}
	tampered := bytes.Replace(g.read(clear), []byte("stable"), []byte("stabel"), 1)
	if _, _, err := VerifyClearSigned(keyring, tampered); !errors.Is(err, ErrBadSignature) {
		t.Errorf("%s tampered clearsigned: err = %v, want ErrBadSignature", algo, err)
	}
	if _, _, err := VerifyClearSigned(ourKeyring(t, ours), g.read(clear)); !errors.Is(err, ErrUnknownKey) || !strings.Contains(err.Error(), fpr) {
		t.Errorf("%s clearsigned, wrong keyring: err = %v, want ErrUnknownKey naming %s", algo, err, fpr)
	}

	for _, armored := range []bool{true, false} {
		sig := filepath.Join(g.home, "Release.sig."+algo)
		args := []string{"--yes", "--local-user", fpr, "--output", sig, "--detach-sign"}
		if armored {
			args = append(args, "--armor")
		}
		g.must("gpg", append(args, data)...)
		signer, err := VerifyDetached(keyring, []byte(release), g.read(sig))
		if err != nil {
			t.Fatalf("%s detached (armored=%v) by gpg: %v", algo, armored, err)
		}
		if fingerprint(signer) != fpr {
			t.Errorf("%s detached: signer %s, want %s", algo, fingerprint(signer), fpr)
		}
		if _, err := VerifyDetached(keyring, []byte(release+"x"), g.read(sig)); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s detached over tampered data: err = %v, want ErrBadSignature", algo, err)
		}
		if _, err := VerifyDetached(ourKeyring(t, ours), []byte(release), g.read(sig)); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("%s detached, wrong keyring: err = %v, want ErrUnknownKey", algo, err)
		}
	}
}

// An operator may bring a key made with gpg, signing with a subkey.
func TestLoadGnuPGSecretKey(t *testing.T) {
	g := newGnuPG(t)
	primary := g.gpgKey("Operator <ops@example.org>", "ed25519", "cert")
	g.must("gpg", "--quick-add-key", primary, "rsa3072", "sign", "never")
	path := filepath.Join(g.home, "operator.key")
	g.must("gpg", "--yes", "--armor", "--output", path, "--export-secret-keys", primary)
	keyring := filepath.Join(g.home, "operator.gpg")
	g.must("gpg", "--yes", "--output", keyring, "--export", primary)

	k, err := LoadOrCreate(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if k.Fingerprint() != primary {
		t.Errorf("fingerprint %s, want %s", k.Fingerprint(), primary)
	}
	inRelease, err := k.ClearSign([]byte(release))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := k.DetachSign([]byte(release))
	if err != nil {
		t.Fatal(err)
	}
	rel := g.file("Release", []byte(release))
	for what, args := range map[string][]string{
		"InRelease":   {g.file("InRelease", inRelease)},
		"Release.gpg": {g.file("Release.gpg", sig), rel},
	} {
		out := g.must("gpgv", append([]string{"--keyring", keyring}, args...)...)
		if !strings.Contains(out, "[GNUPG:] VALIDSIG ") || !strings.Contains(out, primary) {
			t.Errorf("%s: gpgv status lacks a valid signature for %s:\n%s", what, primary, out)
		}
		if strings.Contains(out, "VALIDSIG "+primary) {
			t.Errorf("%s: signed by the certify-only primary key, want the signing subkey:\n%s", what, out)
		}
	}
}
