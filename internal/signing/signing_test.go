package signing

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

const release = `Origin: mirrord
Label: test
Suite: stable
Codename: bookworm
Date: Sat, 01 Jun 2024 10:00:00 UTC
Architectures: amd64
Components: main
SHA256:
 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 1234 main/binary-amd64/Packages
-----BEGIN dash-escaped line
From the start
`

// RSA-3072 generation takes a while: do it once per test binary.
var shared struct {
	once sync.Once
	dir  string
	path string
	key  *Key
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.dir != "" {
		os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

func testKey(t *testing.T) (*Key, string) {
	t.Helper()
	shared.once.Do(func() {
		shared.dir, shared.err = os.MkdirTemp("", "mirrord-signing-")
		if shared.err != nil {
			return
		}
		shared.path = filepath.Join(shared.dir, "state", "keys", "mirrord.key")
		shared.key, shared.err = LoadOrCreate(shared.path, "")
	})
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.key, shared.path
}

func TestLoadOrCreate(t *testing.T) {
	k, path := testKey(t)
	if !regexp.MustCompile(`^[0-9A-F]{40}$`).MatchString(k.Fingerprint()) {
		t.Errorf("fingerprint %q: want 40 uppercase hex digits", k.Fingerprint())
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", st.Mode().Perm())
	}
	dst, err := os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if dst.Mode().Perm() != 0o700 {
		t.Errorf("key dir mode %v, want 0700", dst.Mode().Perm())
	}
	again, err := LoadOrCreate(path, "ignored when loading")
	if err != nil {
		t.Fatal(err)
	}
	if again.Fingerprint() != k.Fingerprint() {
		t.Errorf("reloaded fingerprint %s, want %s", again.Fingerprint(), k.Fingerprint())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("key dir has %d entries, want just the key (temp file left behind?)", len(entries))
	}
}

func TestGeneratedKeyShape(t *testing.T) {
	k, _ := testKey(t)
	pub := k.Entity().PrimaryKey
	if pub.PubKeyAlgo != packet.PubKeyAlgoRSA {
		t.Errorf("algorithm %v, want RSA", pub.PubKeyAlgo)
	}
	if bits, _ := pub.BitLength(); bits != rsaBits {
		t.Errorf("key size %d, want %d", bits, rsaBits)
	}
	if pub.Version != 4 {
		t.Errorf("key version %d, want 4", pub.Version)
	}
	id := k.Entity().PrimaryIdentity()
	if id == nil || !strings.HasPrefix(id.Name, DefaultName+" <mirrord@") {
		t.Errorf("identity %v, want %q <mirrord@HOST>", id, DefaultName)
	}
	el, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(k.PublicArmored()))
	if err != nil || len(el) != 1 || el[0].PrivateKey != nil {
		t.Fatalf("PublicArmored: %d entities, err %v (want one public key)", len(el), err)
	}
	bin, err := openpgp.ReadKeyRing(bytes.NewReader(k.PublicBinary()))
	if err != nil || len(bin) != 1 || fingerprint(bin[0]) != k.Fingerprint() {
		t.Fatalf("PublicBinary: %d entities, err %v", len(bin), err)
	}
}

func TestLoadRejectsPublicKeyFile(t *testing.T) {
	k, _ := testKey(t)
	path := filepath.Join(t.TempDir(), "pub.asc")
	if err := os.WriteFile(path, k.PublicArmored(), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadOrCreate(path, "")
	if err == nil || !strings.Contains(err.Error(), "only a public key") || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want a public-key-only error naming %s", err, path)
	}
}

func TestClearSignRoundTrip(t *testing.T) {
	k, _ := testKey(t)
	signed, err := k.ClearSign([]byte(release))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(signed, []byte("-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\n")) {
		t.Errorf("unexpected clearsign header:\n%s", signed)
	}
	if !bytes.Contains(signed, []byte("From the start\n-----BEGIN PGP SIGNATURE-----")) {
		t.Errorf("signature block should follow the last line directly, like gpg:\n%s", signed)
	}
	plain, signer, err := VerifyClearSigned(ourKeyring(t, k), signed)
	if err != nil {
		t.Fatal(err)
	}
	if string(plain) != release {
		t.Errorf("plaintext:\n%q\nwant\n%q", plain, release)
	}
	if fingerprint(signer) != k.Fingerprint() {
		t.Errorf("signer %s, want %s", fingerprint(signer), k.Fingerprint())
	}
}

func TestClearSignedTampered(t *testing.T) {
	k, _ := testKey(t)
	signed, err := k.ClearSign([]byte(release))
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Replace(signed, []byte("Suite: stable"), []byte("Suite: stabel"), 1)
	_, _, err = VerifyClearSigned(ourKeyring(t, k), bad)
	if !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered: err = %v, want ErrBadSignature", err)
	}
	for name, data := range map[string][]byte{
		"prefix": append([]byte("Suite: evil\n"), signed...),
		"suffix": append(append([]byte{}, signed...), "Suite: evil\n"...),
	} {
		if _, _, err := VerifyClearSigned(ourKeyring(t, k), data); !errors.Is(err, ErrBadSignature) {
			t.Errorf("unsigned %s: err = %v, want ErrBadSignature", name, err)
		}
	}
	if _, _, err := VerifyClearSigned(ourKeyring(t, k), []byte(release)); !errors.Is(err, ErrNoSignature) {
		t.Errorf("unsigned file: err = %v, want ErrNoSignature", err)
	}
}

func TestDetachSignRoundTrip(t *testing.T) {
	k, _ := testKey(t)
	sig, err := k.DetachSign([]byte(release))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(sig, []byte("-----BEGIN PGP SIGNATURE-----")) {
		t.Fatalf("not armored:\n%s", sig)
	}
	signer, err := VerifyDetached(ourKeyring(t, k), []byte(release), sig)
	if err != nil {
		t.Fatal(err)
	}
	if fingerprint(signer) != k.Fingerprint() {
		t.Errorf("signer %s, want %s", fingerprint(signer), k.Fingerprint())
	}
	if _, err := VerifyDetached(ourKeyring(t, k), []byte(release), dearmor(t, sig)); err != nil {
		t.Errorf("binary signature: %v", err)
	}
	_, err = VerifyDetached(ourKeyring(t, k), []byte(release+"x"), sig)
	if !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), k.Fingerprint()) {
		t.Errorf("tampered: err = %v, want ErrBadSignature naming the key", err)
	}
	if _, err := VerifyDetached(ourKeyring(t, k), []byte(release), nil); !errors.Is(err, ErrNoSignature) {
		t.Errorf("empty sig: err = %v, want ErrNoSignature", err)
	}
}

func TestUnknownSigner(t *testing.T) {
	k, _ := testKey(t)
	other, err := openpgp.NewEntity("other", "", "other@example.org", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	sig, err := k.DetachSign([]byte(release))
	if err != nil {
		t.Fatal(err)
	}
	_, err = VerifyDetached(openpgp.EntityList{other}, []byte(release), sig)
	if !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("err = %v, want ErrUnknownKey", err)
	}
	if !strings.Contains(err.Error(), k.Fingerprint()) || !strings.Contains(err.Error(), fingerprint(other)) {
		t.Errorf("error should name the signing key and the keyring's keys: %v", err)
	}
}

func TestReadKeyringFormats(t *testing.T) {
	k, _ := testKey(t)
	other, err := openpgp.NewEntity("other", "", "other@example.org", &packet.Config{Algorithm: packet.PubKeyAlgoEdDSA})
	if err != nil {
		t.Fatal(err)
	}
	var otherBin bytes.Buffer
	if err := other.Serialize(&otherBin); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cases := map[string][]byte{
		"two.gpg": append(k.PublicBinary(), otherBin.Bytes()...),
		"two.asc": append(k.PublicArmored(), armorKey(t, otherBin.Bytes())...),
		"one.asc": k.PublicArmored(),
	}
	for name, data := range cases {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		el, err := ReadKeyring(path)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want := 2
		if name == "one.asc" {
			want = 1
		}
		if len(el) != want {
			t.Errorf("%s: %d keys, want %d", name, len(el), want)
		}
	}
	missing := filepath.Join(dir, "missing.gpg")
	if _, err := ReadKeyring(missing); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing keyring: err = %v, want it to name %s", err, missing)
	}
}

func ourKeyring(t *testing.T, k *Key) openpgp.EntityList {
	t.Helper()
	el, err := openpgp.ReadKeyRing(bytes.NewReader(k.PublicBinary()))
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func dearmor(t *testing.T, armored []byte) []byte {
	t.Helper()
	raw, err := dearmorSignature(armored)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func armorKey(t *testing.T, bin []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PublicKeyType, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bin)
	w.Close()
	buf.WriteByte('\n')
	return buf.Bytes()
}

func TestWriteNewDoesNotClobber(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "key")
	created, err := writeNew(path, []byte("first"))
	if err != nil || !created {
		t.Fatalf("first write: created=%v err=%v", created, err)
	}
	created, err = writeNew(path, []byte("second"))
	if err != nil || created {
		t.Fatalf("second write: created=%v err=%v, want false, nil", created, err)
	}
	if got, _ := os.ReadFile(path); string(got) != "first" {
		t.Errorf("content %q, want the first writer's", got)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("%d entries in dir, want 1 (temp files left?)", len(entries))
	}
}
