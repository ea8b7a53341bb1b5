// Package apttest builds real apt repositories for tests: tiny .debs made
// with dpkg-deb, indices made with apt-ftparchive, signed with gpg, served
// by httptest on 127.0.0.1; and runs stock apt-get against a repository
// with a private state directory.
//
// Tools it needs: dpkg-deb, apt-ftparchive (apt-utils), gpg, xz, bzip2,
// zstd, apt-get. Need skips a test when one is missing, except under
// CI=true, where it fails the test.
package apttest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/requiretool"
)

// Need skips (or, under CI=true, fails) t unless every tool is installed.
func Need(t testing.TB, tools ...string) {
	t.Helper()
	requiretool.All(t, tools...)
}

// Key is an OpenPGP key in a GnuPG home directory of its own.
type Key struct {
	Home        string // GNUPGHOME
	Keyring     string // binary public keyring (what apt's signed-by and mirrord's keyring take)
	Armored     string // ASCII-armored public key
	Fingerprint string
}

// NewKey generates a fresh ed25519 signing key. The gpg agent is stopped
// and the home removed when t ends.
func NewKey(t testing.TB, name string) *Key {
	t.Helper()
	Need(t, "gpg")
	// Short path: the agent's socket path must fit in sun_path.
	home, err := os.MkdirTemp("", "apttest-gpg")
	if err != nil {
		t.Fatal(err)
	}
	k := &Key{Home: home, Keyring: filepath.Join(home, "pub.gpg"), Armored: filepath.Join(home, "pub.asc")}
	t.Cleanup(func() {
		cmd := exec.Command("gpgconf", "--kill", "gpg-agent")
		cmd.Env = append(os.Environ(), "GNUPGHOME="+home)
		_ = cmd.Run()
		os.RemoveAll(home)
	})
	k.gpg(t, nil, "--quick-gen-key", name+" <"+strings.ReplaceAll(name, " ", "-")+"@example.invalid>", "ed25519", "sign", "never")
	for _, line := range strings.Split(string(k.gpg(t, nil, "--with-colons", "--list-keys")), "\n") {
		if f := strings.Split(line, ":"); len(f) > 9 && f[0] == "fpr" && k.Fingerprint == "" {
			k.Fingerprint = f[9]
		}
	}
	writeFile(t, k.Keyring, k.gpg(t, nil, "--export", k.Fingerprint))
	writeFile(t, k.Armored, k.gpg(t, nil, "--armor", "--export", k.Fingerprint))
	return k
}

// gpg runs gpg in k's home with stdin and returns stdout.
func (k *Key) gpg(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command("gpg", append([]string{"--batch", "--quiet", "--no-tty", "--pinentry-mode", "loopback", "--passphrase", ""}, args...)...)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+k.Home)
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("gpg %v: %v\n%s", args, err, errb.String())
	}
	return out.Bytes()
}

// ClearSign returns data clearsigned (an InRelease file).
func (k *Key) ClearSign(t testing.TB, data []byte) []byte {
	t.Helper()
	return k.gpg(t, data, "--digest-algo", "SHA256", "--local-user", k.Fingerprint, "--clearsign")
}

// DetachSign returns an armored detached signature of data (Release.gpg).
func (k *Key) DetachSign(t testing.TB, data []byte) []byte {
	t.Helper()
	return k.gpg(t, data, "--digest-algo", "SHA256", "--local-user", k.Fingerprint, "--armor", "--detach-sign")
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// run runs a command in dir and returns its stdout, failing t on error.
func run(t testing.TB, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, errb.String())
	}
	return out.Bytes()
}
