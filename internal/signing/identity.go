package signing

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/mirrord/mirrord/internal/store"
)

// IdentityKey is the store.Meta key holding the armored public key of the
// key that signs the store's snapshots. It is written once, by the first
// sync that signs anything, and names the one signing identity of every
// replica that shares the store.
const IdentityKey = "signing/mirrord.asc"

var (
	// ErrWrongKey is wrapped when the configured key is not the one the
	// store names.
	ErrWrongKey = errors.New("signing key differs from the store's")
	// ErrNoKey is wrapped when the store names a key that this replica
	// does not have: it can serve, not sync.
	ErrNoKey = errors.New("signing key not installed")
)

// Recorded returns the public key the store names, armored, and its
// fingerprint; the error wraps store.ErrNotFound when none is recorded yet.
func Recorded(ctx context.Context, m store.Meta) (armored []byte, fpr string, err error) {
	armored, err = m.Get(ctx, IdentityKey)
	if err != nil {
		return nil, "", fmt.Errorf("reading the store's signing identity (%s): %w", IdentityKey, err)
	}
	ring, err := openpgp.ReadArmoredKeyRing(bytes.NewReader(armored))
	if err != nil || len(ring) == 0 {
		return nil, "", fmt.Errorf("the store's signing identity %s is not an armored OpenPGP public key: %v", IdentityKey, err)
	}
	return armored, fingerprint(ring[0]), nil
}

// ForSync returns the private key a syncing replica signs with: the key at
// path, which must be the one the store names. When the store names none,
// the key at path (generated there when absent) is recorded as the store's.
// A replica never generates a key when the store names one: it fails,
// saying which key to install.
func ForSync(ctx context.Context, m store.Meta, path, name string) (*Key, error) {
	_, want, err := Recorded(ctx, m)
	switch {
	case err == nil:
		return loadRecorded(path, want)
	case !store.IsNotExist(err):
		return nil, err
	}
	k, err := LoadOrCreate(path, name)
	if err != nil {
		return nil, err
	}
	err = m.Create(ctx, IdentityKey, k.PublicArmored())
	if errors.Is(err, store.ErrExists) {
		// Another replica recorded its key first: ours must match.
		if _, want, err = Recorded(ctx, m); err != nil {
			return nil, err
		}
		return checkSame(k, want)
	}
	if err != nil {
		return nil, fmt.Errorf("recording signing key %s as the store's (%s): %w", k.Fingerprint(), IdentityKey, err)
	}
	return k, nil
}

func loadRecorded(path, want string) (*Key, error) {
	k, err := load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("signing key %s does not exist, and this store's snapshots are signed by key %s: install that key's private part there (signing.key_file) to sync from this replica; mirrord does not generate a second key for a store that names one: %w", path, want, ErrNoKey)
	}
	if err != nil {
		return nil, err
	}
	return checkSame(k, want)
}

func checkSame(k *Key, want string) (*Key, error) {
	if k.Fingerprint() != want {
		return nil, fmt.Errorf("signing key %s has fingerprint %s, but this store's snapshots are signed by %s (recorded in %s): configure signing.key_file with that key; refusing to sync with a different one: %w",
			k.Path(), k.Fingerprint(), want, IdentityKey, ErrWrongKey)
	}
	return k, nil
}

// PublicFor returns the armored public key a replica serves at
// /keys/mirrord.asc: the store's identity, else the public part of the key
// at path when it exists, else nil. It never generates a key.
func PublicFor(ctx context.Context, m store.Meta, path string) ([]byte, error) {
	armored, _, err := Recorded(ctx, m)
	if err == nil || !store.IsNotExist(err) {
		return armored, err
	}
	k, err := load(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return k.PublicArmored(), nil
}
