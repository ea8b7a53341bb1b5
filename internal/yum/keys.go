package yum

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/store"
)

// maxKeySize caps a gpgkey fetched from a URL.
const maxKeySize = 1 << 20

// keyring is the upstream's public keys (config gpgkey).
type keyring struct {
	entities openpgp.EntityList
	armored  []byte // the public keys, armored, as published in the tree
}

// isRemoteKey reports whether gpgkey is an http(s) URL.
func isRemoteKey(gpgkey string) bool {
	return strings.HasPrefix(gpgkey, "http://") || strings.HasPrefix(gpgkey, "https://")
}

// localKeyPath turns a path or file:// URL into a path.
func localKeyPath(gpgkey string) (string, error) {
	if !strings.HasPrefix(gpgkey, "file:") {
		return gpgkey, nil
	}
	u, err := url.Parse(gpgkey)
	if err != nil || u.Path == "" {
		return "", fmt.Errorf("gpgkey %q: bad file URL", gpgkey)
	}
	return filepath.FromSlash(u.Path), nil
}

// loadKeyring reads gpgkey: a path, a file:// URL or an http(s) URL
// (fetched with f). An empty gpgkey yields nil.
func loadKeyring(ctx context.Context, f *fetch.Fetcher, gpgkey string) (*keyring, error) {
	if gpgkey == "" {
		return nil, nil
	}
	path := gpgkey
	if isRemoteKey(gpgkey) {
		tmp, cleanup, err := downloadKey(ctx, f, gpgkey)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		path = tmp
	} else if p, err := localKeyPath(gpgkey); err != nil {
		return nil, err
	} else {
		path = p
	}
	// signing.ReadKeyring knows every format: binary, armored, one key
	// or several blocks.
	el, err := signing.ReadKeyring(path)
	if err != nil {
		return nil, fmt.Errorf("gpgkey %s: %w", gpgkey, err)
	}
	arm, err := armorKeys(el)
	if err != nil {
		return nil, fmt.Errorf("gpgkey %s: %w", gpgkey, err)
	}
	return &keyring{entities: el, armored: arm}, nil
}

// downloadKey fetches a gpgkey URL into a temporary file.
func downloadKey(ctx context.Context, f *fetch.Fetcher, keyURL string) (path string, cleanup func(), err error) {
	resp, err := f.Get(ctx, fetch.Request{URL: keyURL, MaxSize: maxKeySize})
	if err != nil {
		return "", nil, fmt.Errorf("gpgkey: %w", err)
	}
	dir, err := os.MkdirTemp("", "mirrord-gpgkey")
	if err != nil {
		return "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	path = filepath.Join(dir, "key")
	if err := os.WriteFile(path, resp.Body, 0o600); err != nil {
		cleanup()
		return "", nil, err
	}
	return path, cleanup, nil
}

// armorKeys exports the public part of every key, armored, one block per
// key (what rpm --import and dnf's gpgkey= expect).
func armorKeys(el openpgp.EntityList) ([]byte, error) {
	var out bytes.Buffer
	for _, e := range el {
		w, err := armor.Encode(&out, openpgp.PublicKeyType, nil)
		if err != nil {
			return nil, err
		}
		if err := e.Serialize(w); err != nil {
			return nil, fmt.Errorf("export key: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, err
		}
		out.WriteByte('\n')
	}
	return out.Bytes(), nil
}

// localKeyDigest is the sha256 of a local gpgkey file ("" for URLs), so a
// replaced key invalidates what was verified with the old one.
func localKeyDigest(gpgkey string) (string, error) {
	if gpgkey == "" || isRemoteKey(gpgkey) {
		return "", nil
	}
	p, err := localKeyPath(gpgkey)
	if err != nil {
		return "", err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("gpgkey: %w", err)
	}
	return string(store.DigestOf(data)), nil
}
