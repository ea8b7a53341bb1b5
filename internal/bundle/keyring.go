package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/mirrord/mirrord/internal/atomicfile"
	"github.com/mirrord/mirrord/internal/signing"
)

// Keyrings says where imports find the keys whose bundles they accept, in
// order of precedence: the --keyring flag, the config's bundle.keyring,
// and the keyring installed in the data dir by the first import with
// --keyring.
type Keyrings struct {
	Flag       string
	Configured string
	Installed  string
}

// Load returns the keyring to verify with and the file it came from.
func (k Keyrings) Load() (openpgp.EntityList, string, error) {
	for _, p := range []string{k.Flag, k.Configured} {
		if p != "" {
			el, err := signing.ReadKeyring(p)
			return el, p, err
		}
	}
	if k.Installed != "" {
		el, err := signing.ReadKeyring(k.Installed)
		if err == nil {
			return el, k.Installed, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, "", err
		}
	}
	return nil, "", fmt.Errorf("no keyring to check the bundle's signature with: pass --keyring with the exporter's public key (its /keys/mirrord.asc) once, or set bundle.keyring in the config")
}

// Install adds the keys of the --keyring flag to the installed keyring,
// so later imports need no flag. Keys present already are kept once.
func (k Keyrings) Install() error {
	if k.Flag == "" || k.Installed == "" {
		return nil
	}
	add, err := signing.ReadKeyring(k.Flag)
	if err != nil {
		return err
	}
	var have openpgp.EntityList
	if old, err := signing.ReadKeyring(k.Installed); err == nil {
		have = old
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	seen := map[string]bool{}
	for _, e := range have {
		seen[string(e.PrimaryKey.Fingerprint)] = true
	}
	changed := false
	for _, e := range add {
		if !seen[string(e.PrimaryKey.Fingerprint)] {
			seen[string(e.PrimaryKey.Fingerprint)] = true
			have = append(have, e)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	var buf bytes.Buffer
	for _, e := range have {
		if err := e.Serialize(&buf); err != nil {
			return fmt.Errorf("installing keyring %s: %w", k.Installed, err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(k.Installed), 0o755); err != nil {
		return fmt.Errorf("installing keyring: %w", err)
	}
	if err := atomicfile.Write(k.Installed, buf.Bytes(), 0o644, nil); err != nil {
		return fmt.Errorf("installing keyring %s: %w", k.Installed, err)
	}
	return nil
}
