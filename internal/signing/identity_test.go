package signing

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/fs"
)

func TestIdentity(t *testing.T) {
	st, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	m := st.Meta()
	dir := t.TempDir()
	keyA := filepath.Join(dir, "a.asc")
	if pub, err := PublicFor(t.Context(), m, keyA); err != nil || pub != nil {
		t.Fatalf("PublicFor before any key = %q, %v; want nothing", pub, err)
	}
	if _, err := os.Stat(keyA); !os.IsNotExist(err) {
		t.Fatalf("PublicFor generated a key")
	}
	// The first sync generates the key and records it.
	a, err := ForSync(t.Context(), m, keyA, "mirrord")
	if err != nil {
		t.Fatal(err)
	}
	armored, fpr, err := Recorded(t.Context(), m)
	if err != nil || fpr != a.Fingerprint() || string(armored) != string(a.PublicArmored()) {
		t.Fatalf("Recorded = %s, %v; want %s", fpr, err, a.Fingerprint())
	}
	// Same key again: fine.
	if k, err := ForSync(t.Context(), m, keyA, "mirrord"); err != nil || k.Fingerprint() != fpr {
		t.Errorf("ForSync with the recorded key = %v", err)
	}
	// A replica without the key file: no new key, a clear error.
	keyB := filepath.Join(dir, "b.asc")
	_, err = ForSync(t.Context(), m, keyB, "mirrord")
	if !errors.Is(err, ErrNoKey) || !strings.Contains(err.Error(), fpr) || !strings.Contains(err.Error(), keyB) {
		t.Errorf("ForSync without the key: err = %v; want one naming %s and %s", err, keyB, fpr)
	}
	if _, err := os.Stat(keyB); !os.IsNotExist(err) {
		t.Errorf("ForSync generated a second key for a store that names one")
	}
	// A replica serving without the private key serves the store's key.
	if pub, err := PublicFor(t.Context(), m, keyB); err != nil || string(pub) != string(armored) {
		t.Errorf("PublicFor = %v; want the store's key", err)
	}
	// A different key: refused, naming both fingerprints.
	b, err := LoadOrCreate(keyB, "other")
	if err != nil {
		t.Fatal(err)
	}
	_, err = ForSync(t.Context(), m, keyB, "mirrord")
	if !errors.Is(err, ErrWrongKey) || !strings.Contains(err.Error(), fpr) || !strings.Contains(err.Error(), b.Fingerprint()) {
		t.Errorf("ForSync with another key: err = %v; want ErrWrongKey naming %s and %s", err, fpr, b.Fingerprint())
	}
	if err := m.Put(t.Context(), IdentityKey, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Recorded(t.Context(), m); err == nil || store.IsNotExist(err) {
		t.Errorf("Recorded of garbage: err = %v", err)
	}
}
