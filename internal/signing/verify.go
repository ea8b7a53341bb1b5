package signing

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	"github.com/ProtonMail/go-crypto/openpgp/clearsign"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
)

// Errors returned (wrapped) by the verification helpers.
var (
	ErrNoSignature  = errors.New("no signature found")
	ErrUnknownKey   = errors.New("signing key not in keyring")
	ErrBadSignature = errors.New("bad signature")
)

var armorPrefix = []byte("-----BEGIN PGP ")

// ReadKeyring reads the public keys in path: binary (apt .gpg) or armored
// (.asc, rpm-gpg), one key or many, several armored blocks allowed.
func ReadKeyring(path string) (openpgp.EntityList, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read keyring: %w", err)
	}
	el, err := parseKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("keyring %s: %w", path, err)
	}
	return el, nil
}

// parseKeyring parses binary or armored keys.
func parseKeyring(data []byte) (openpgp.EntityList, error) {
	if isKeybox(data) {
		return nil, errors.New("GnuPG keybox (.kbx) format is not supported; export it with gpg --export > keyring.gpg")
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if !bytes.HasPrefix(trimmed, armorPrefix) {
		el, err := openpgp.ReadKeyRing(bytes.NewReader(data))
		if err != nil {
			return nil, fmt.Errorf("parse binary keyring: %w", err)
		}
		return el, nil
	}
	return parseArmoredKeys(trimmed)
}

// isKeybox recognizes GnuPG's keybox format (magic "KBXf" at offset 8).
func isKeybox(data []byte) bool {
	return len(data) >= 12 && string(data[8:12]) == "KBXf"
}

// parseArmoredKeys reads every armored key block in data.
func parseArmoredKeys(data []byte) (openpgp.EntityList, error) {
	var all openpgp.EntityList
	for _, seg := range armoredBlocks(data) {
		block, err := armor.Decode(bytes.NewReader(seg))
		if err != nil {
			return nil, fmt.Errorf("parse armored keyring: %w", err)
		}
		if block.Type != openpgp.PublicKeyType && block.Type != openpgp.PrivateKeyType {
			return nil, fmt.Errorf("parse armored keyring: unexpected %q block", block.Type)
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err != nil {
			return nil, fmt.Errorf("parse armored keyring: %w", err)
		}
		all = append(all, el...)
	}
	if len(all) == 0 {
		return nil, errors.New("no keys found")
	}
	return all, nil
}

// armoredBlocks splits data into its "-----BEGIN PGP" ... "-----END PGP"
// blocks (armor.Decode reads ahead, so it cannot walk a stream of blocks).
func armoredBlocks(data []byte) [][]byte {
	var blocks [][]byte
	endMarker := []byte("-----END PGP ")
	for {
		start := bytes.Index(data, armorPrefix)
		if start < 0 {
			return blocks
		}
		end := bytes.Index(data[start:], endMarker)
		if end < 0 {
			return append(blocks, data[start:]) // let Decode report it
		}
		end += start
		if nl := bytes.IndexByte(data[end:], '\n'); nl >= 0 {
			end += nl + 1
		} else {
			end = len(data)
		}
		blocks = append(blocks, data[start:end])
		data = data[end:]
	}
}

// VerifyDetached checks sig (armored or binary) over signed and returns the
// key that made it.
func VerifyDetached(keyring openpgp.EntityList, signed []byte, sig []byte) (*openpgp.Entity, error) {
	raw, err := dearmorSignature(sig)
	if err != nil {
		return nil, err
	}
	return verify(keyring, signed, raw)
}

// VerifyClearSigned checks a clearsigned message (InRelease) and returns its
// signed text, ending in a newline. Text before the message or after its signature is refused:
// unsigned data there could be mistaken for signed content.
func VerifyClearSigned(keyring openpgp.EntityList, data []byte) (plaintext []byte, signer *openpgp.Entity, err error) {
	block, rest := clearsign.Decode(data)
	if block == nil {
		return nil, nil, fmt.Errorf("%w: not a clearsigned message", ErrNoSignature)
	}
	if i := bytes.Index(data, []byte("-----BEGIN PGP SIGNED MESSAGE-----")); i < 0 || len(bytes.TrimSpace(data[:i])) > 0 {
		return nil, nil, fmt.Errorf("%w: unsigned data before the clearsigned message", ErrBadSignature)
	}
	if len(bytes.TrimSpace(rest)) > 0 {
		return nil, nil, fmt.Errorf("%w: unsigned data after the clearsigned message", ErrBadSignature)
	}
	raw, err := io.ReadAll(block.ArmoredSignature.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: unreadable signature block: %v", ErrBadSignature, err)
	}
	signer, err = verify(keyring, block.Bytes, raw)
	if err != nil {
		return nil, nil, err
	}
	return withNewline(block.Plaintext), signer, nil
}

// withNewline restores the final newline that the cleartext framework
// cannot carry, so that a file ending in a newline round-trips.
func withNewline(b []byte) []byte {
	if len(b) == 0 || b[len(b)-1] == '\n' {
		return b
	}
	return append(b, '\n')
}

// dearmorSignature returns the binary packets of an armored or binary sig.
func dearmorSignature(sig []byte) ([]byte, error) {
	trimmed := bytes.TrimLeft(sig, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: signature is empty", ErrNoSignature)
	}
	if !bytes.HasPrefix(trimmed, armorPrefix) {
		return sig, nil
	}
	block, err := armor.Decode(bytes.NewReader(trimmed))
	if err != nil {
		return nil, fmt.Errorf("%w: bad signature armor: %v", ErrNoSignature, err)
	}
	if block.Type != openpgp.SignatureType {
		return nil, fmt.Errorf("%w: expected a %q block, got %q", ErrNoSignature, openpgp.SignatureType, block.Type)
	}
	raw, err := io.ReadAll(block.Body)
	if err != nil {
		return nil, fmt.Errorf("%w: bad signature armor: %v", ErrNoSignature, err)
	}
	return raw, nil
}

// verify checks binary signature packets raw over signed.
func verify(keyring openpgp.EntityList, signed, raw []byte) (*openpgp.Entity, error) {
	issuers, err := signatureIssuers(raw)
	if err != nil {
		return nil, err
	}
	signer, err := openpgp.CheckDetachedSignature(keyring, bytes.NewReader(signed), bytes.NewReader(raw), nil)
	if err != nil {
		return nil, explain(err, keyring, issuers)
	}
	return signer, nil
}

// signatureIssuers lists the issuers (fingerprint when given, else key id)
// of the signature packets in raw.
func signatureIssuers(raw []byte) ([]string, error) {
	var ids []string
	r := packet.NewReader(bytes.NewReader(raw))
	for {
		p, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: unparseable signature: %v", ErrBadSignature, err)
		}
		sig, ok := p.(*packet.Signature)
		if !ok {
			return nil, fmt.Errorf("%w: unexpected %T packet in signature", ErrBadSignature, p)
		}
		ids = append(ids, issuer(sig))
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%w: no signature packets", ErrNoSignature)
	}
	return ids, nil
}

func issuer(sig *packet.Signature) string {
	switch {
	case len(sig.IssuerFingerprint) > 0:
		return fmt.Sprintf("%X", sig.IssuerFingerprint)
	case sig.IssuerKeyId != nil:
		return fmt.Sprintf("%016X", *sig.IssuerKeyId)
	}
	return "(unknown issuer)"
}

// explain turns go-crypto's errors into ones that say what failed.
func explain(err error, keyring openpgp.EntityList, issuers []string) error {
	by := strings.Join(issuers, ", ")
	var ue pgperrors.UnsupportedError
	var we pgperrors.WeakAlgorithmError
	switch {
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		return fmt.Errorf("%w: signature by key %s not in keyring (keyring has %s)", ErrUnknownKey, by, keyringIDs(keyring))
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return fmt.Errorf("%w: signing key %s has expired; update the keyring: %v", ErrBadSignature, by, err)
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return fmt.Errorf("%w: signature by key %s has expired: %v", ErrBadSignature, by, err)
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return fmt.Errorf("%w: signing key %s is revoked: %v", ErrBadSignature, by, err)
	case errors.As(err, &ue), errors.As(err, &we):
		return fmt.Errorf("%w: signature by key %s uses an unsupported or rejected algorithm: %v", ErrBadSignature, by, err)
	}
	return fmt.Errorf("%w: signature by key %s does not match the data (tampered or corrupt): %v", ErrBadSignature, by, err)
}

// keyringIDs lists the primary fingerprints of a keyring for messages.
func keyringIDs(keyring openpgp.EntityList) string {
	if len(keyring) == 0 {
		return "no keys"
	}
	ids := make([]string, 0, len(keyring))
	for _, e := range keyring {
		ids = append(ids, fingerprint(e))
	}
	return strings.Join(ids, ", ")
}
