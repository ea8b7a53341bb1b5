// Package signing holds mirrord's own OpenPGP signing key (used for InRelease,
// Release.gpg and repomd.xml.asc) and helpers to verify upstream signatures.
//
// Generated keys are v4 RSA-3072 keys that sign with SHA-256: that is what
// gpgv on Debian/Ubuntu and rpm/dnf on RHEL 8 and 9 all verify. Signature
// subpackets are kept non-critical, as GnuPG does, because older rpm
// parsers reject signatures carrying critical subpackets they do not know.
package signing

import (
	"bytes"
	"crypto"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// DefaultName is the user-id name of generated keys when LoadOrCreate gets
// an empty name.
const DefaultName = "mirrord signing key"

// rsaBits is the size of generated keys.
const rsaBits = 3072

// Key is mirrord's signing key. Its methods are safe for concurrent use.
type Key struct {
	entity     *openpgp.Entity
	path       string
	pubBinary  []byte
	pubArmored []byte
}

// config returns the settings used for key generation and signing.
func config() *packet.Config {
	noSalt := false
	return &packet.Config{
		Algorithm:     packet.PubKeyAlgoRSA,
		RSABits:       rsaBits,
		DefaultHash:   crypto.SHA256,
		DefaultCipher: packet.CipherAES256,
		// Plain v4 signatures without the salt notation: byte-for-byte
		// what GnuPG produces, nothing for old verifiers to trip over.
		NonDeterministicSignaturesViaNotation:            &noSalt,
		InsecureGenerateNonCriticalKeyFlags:              true,
		InsecureGenerateNonCriticalSignatureCreationTime: true,
	}
}

// LoadOrCreate reads the armored private key at path. When path does not
// exist it generates a new key with the user id "name <mirrord@HOSTNAME>"
// (name defaults to DefaultName), writes it there with mode 0600 (creating
// parent directories 0700) and returns it. Concurrent callers creating the
// same path all end up with the key that was written first.
func LoadOrCreate(path string, name string) (*Key, error) {
	k, err := load(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	e, err := generate(name)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	armored, err := armorPrivate(e)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	created, err := writeNew(path, armored)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	if !created {
		return load(path) // someone else won the race
	}
	return newKey(e, path)
}

// load reads and checks the private key at path. The error wraps
// fs.ErrNotExist when the file is absent.
func load(path string) (*Key, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	el, err := parseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", path, err)
	}
	if len(el) != 1 {
		return nil, fmt.Errorf("signing key %s: want exactly one key, found %d", path, len(el))
	}
	e := el[0]
	if e.PrivateKey == nil {
		return nil, fmt.Errorf("signing key %s: contains only a public key; remove it to generate a new one or supply the private key", path)
	}
	sk, ok := e.SigningKey(config().Now())
	if !ok {
		return nil, fmt.Errorf("signing key %s: key %s has no valid signing key (expired or revoked?)", path, fingerprint(e))
	}
	if sk.PrivateKey == nil || sk.PrivateKey.Dummy() {
		return nil, fmt.Errorf("signing key %s: the secret part of signing key %X is missing (exported with gpg --export-secret-subkeys?)", path, sk.PublicKey.Fingerprint)
	}
	if sk.PrivateKey.Encrypted {
		return nil, fmt.Errorf("signing key %s: private key is passphrase-protected; mirrord needs an unprotected key (remove the passphrase, then gpg --export-secret-keys --armor)", path)
	}
	return newKey(e, path)
}

// signer is the private key that makes signatures: the primary key, or
// the newest valid signing subkey of an imported key.
func (k *Key) signer() (*packet.PrivateKey, error) {
	sk, ok := k.entity.SigningKey(config().Now())
	if !ok || sk.PrivateKey == nil {
		return nil, fmt.Errorf("key %s has no usable signing key (expired or revoked?)", k.Fingerprint())
	}
	return sk.PrivateKey, nil
}

// newKey precomputes the public key forms.
func newKey(e *openpgp.Entity, path string) (*Key, error) {
	var bin bytes.Buffer
	if err := e.Serialize(&bin); err != nil {
		return nil, fmt.Errorf("signing key %s: serialize public key: %w", path, err)
	}
	var arm bytes.Buffer
	w, err := armor.Encode(&arm, openpgp.PublicKeyType, nil)
	if err == nil {
		_, err = w.Write(bin.Bytes())
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("signing key %s: armor public key: %w", path, err)
	}
	arm.WriteByte('\n')
	return &Key{entity: e, path: path, pubBinary: bin.Bytes(), pubArmored: arm.Bytes()}, nil
}

// generate makes a fresh signing-only key.
func generate(name string) (*openpgp.Entity, error) {
	if name == "" {
		name = DefaultName
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	e, err := openpgp.NewEntity(name, "", "mirrord@"+host, config())
	if err != nil {
		return nil, fmt.Errorf("generate RSA-%d key: %w", rsaBits, err)
	}
	// The primary key signs; an encryption subkey would only be noise.
	e.Subkeys = nil
	return e, nil
}

func armorPrivate(e *openpgp.Entity) ([]byte, error) {
	var buf bytes.Buffer
	w, err := armor.Encode(&buf, openpgp.PrivateKeyType, nil)
	if err != nil {
		return nil, err
	}
	if err := e.SerializePrivate(w, config()); err != nil {
		return nil, fmt.Errorf("serialize private key: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// writeNew writes data to path through a temporary file. It never replaces
// an existing file: created is false when path appeared in the meantime.
func writeNew(path string, data []byte) (created bool, err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return false, fmt.Errorf("create directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return false, fmt.Errorf("create temp file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := writeSync(tmp, data); err != nil {
		return false, fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	return publish(tmp.Name(), path)
}

func writeSync(f *os.File, data []byte) error {
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// publish moves tmp to path without clobbering: a hard link fails when path
// exists. Filesystems without hard links fall back to rename.
func publish(tmp, path string) (bool, error) {
	err := os.Link(tmp, path)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrExist):
		return false, nil
	default:
		if err := os.Rename(tmp, path); err != nil {
			return false, fmt.Errorf("rename into place: %w", err)
		}
	}
	syncDir(filepath.Dir(path))
	return true, nil
}

// syncDir makes a rename durable; failures only cost durability.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// Path is the file the key was loaded from or written to.
func (k *Key) Path() string { return k.path }

// Entity is the underlying OpenPGP entity (including the private key).
func (k *Key) Entity() *openpgp.Entity { return k.entity }

// Fingerprint is the primary key's fingerprint in uppercase hex.
func (k *Key) Fingerprint() string { return fingerprint(k.entity) }

func fingerprint(e *openpgp.Entity) string {
	return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint))
}

// PublicBinary is the public key as a binary keyring, the form apt wants in
// a Signed-By .gpg file.
func (k *Key) PublicBinary() []byte { return bytes.Clone(k.pubBinary) }

// PublicArmored is the ASCII-armored public key (served as mirrord.asc).
func (k *Key) PublicArmored() []byte { return bytes.Clone(k.pubArmored) }

// ClearSign returns data as a clearsigned message (an InRelease file),
// laid out like gpg --clearsign output. As the cleartext format requires,
// trailing whitespace on lines is not part of the signed text, and data's
// final newline is the one that precedes the signature block.
func (k *Key) ClearSign(data []byte) ([]byte, error) {
	data = bytes.TrimSuffix(data, []byte("\n"))
	priv, err := k.signer()
	if err != nil {
		return nil, fmt.Errorf("clearsign: %w", err)
	}
	var buf bytes.Buffer
	w, err := clearsign.Encode(&buf, priv, config())
	if err != nil {
		return nil, fmt.Errorf("clearsign with key %s: %w", k.Fingerprint(), err)
	}
	if _, err := w.Write(data); err != nil {
		return nil, fmt.Errorf("clearsign with key %s: %w", k.Fingerprint(), err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("clearsign with key %s: %w", k.Fingerprint(), err)
	}
	out, err := withChecksum(buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("clearsign with key %s: %w", k.Fingerprint(), err)
	}
	return out, nil
}

// withChecksum re-armors the signature block of a clearsigned message with
// a CRC-24 line. go-crypto omits it, and gpg/gpgv 2.2 (Debian bookworm)
// then misparse the block when the text has dash-escaped lines.
func withChecksum(clear []byte) ([]byte, error) {
	i := bytes.LastIndex(clear, []byte("\n-----BEGIN PGP SIGNATURE-----"))
	if i < 0 {
		return nil, errors.New("no signature block in clearsigned output")
	}
	block, err := armor.Decode(bytes.NewReader(clear[i+1:]))
	if err != nil {
		return nil, fmt.Errorf("re-read signature block: %w", err)
	}
	raw, err := io.ReadAll(block.Body)
	if err != nil {
		return nil, fmt.Errorf("re-read signature block: %w", err)
	}
	var out bytes.Buffer
	out.Write(clear[:i+1])
	w, err := armor.Encode(&out, openpgp.SignatureType, nil)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(raw); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}

// DetachSign returns an armored detached binary-mode signature of data
// (Release.gpg, repomd.xml.asc).
func (k *Key) DetachSign(data []byte) ([]byte, error) {
	var buf bytes.Buffer
	if err := openpgp.ArmoredDetachSign(&buf, k.entity, bytes.NewReader(data), config()); err != nil {
		return nil, fmt.Errorf("detach-sign with key %s: %w", k.Fingerprint(), err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}
