package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/fs"
)

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"4G", 4 << 30}, {"4095M", 4095 << 20}, {"64k", 64 << 10}, {"1000", 1000}, {"2GiB", 2 << 30}, {"1T", 1 << 40},
		{"", -1}, {"0", -1}, {"-1G", -1}, {"4X", -1}, {"G", -1},
	} {
		got, err := ParseSize(tc.in)
		if tc.want < 0 {
			if err == nil {
				t.Errorf("ParseSize(%q) = %d, want an error", tc.in, got)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
}

// The key takes seconds to generate: one per test binary.
var (
	keyOnce sync.Once
	key     *signing.Key
	keyErr  error
)

func testKey(t testing.TB) *signing.Key {
	t.Helper()
	keyOnce.Do(func() {
		dir, err := os.MkdirTemp("", "bundle-key")
		if err != nil {
			keyErr = err
			return
		}
		key, keyErr = signing.LoadOrCreate(filepath.Join(dir, "k.asc"), "bundle test")
	})
	if keyErr != nil {
		t.Fatal(keyErr)
	}
	return key
}

func keyring(t *testing.T, k *signing.Key) openpgp.EntityList {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pub.asc")
	os.WriteFile(p, k.PublicArmored(), 0o644)
	el, err := signing.ReadKeyring(p)
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func catalog(t *testing.T) *snapshot.Catalog {
	t.Helper()
	st, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return snapshot.New(st)
}

// commit stores files as one source and commits a snapshot of it.
func commit(t *testing.T, c *snapshot.Catalog, files map[string]string) *snapshot.Record {
	t.Helper()
	ctx := context.Background()
	var es []snapshot.Entry
	for p, body := range files {
		in, err := c.Store().Blobs().Put(ctx, strings.NewReader(body), store.Expect{})
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, snapshot.Entry{Path: p, Digest: in.Digest, Size: in.Size})
	}
	tree, err := snapshot.NewTree(es)
	if err != nil {
		t.Fatal(err)
	}
	d, err := snapshot.PutTree(ctx, c.Store().Blobs(), tree)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := c.Commit(ctx, []snapshot.SourceRecord{{Kind: "file", Name: "f", Tree: d, Files: len(es), Size: tree.Size()}})
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func export(t *testing.T, x *Exporter, id, since string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := x.Export(context.Background(), &buf, id, since); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func source(data []byte) *Source {
	return &Source{Name: "test", r: bytes.NewReader(data), close: func() error { return nil }}
}

func TestExportImport(t *testing.T) {
	ctx := context.Background()
	k := testKey(t)
	kr := keyring(t, k)
	a := catalog(t)
	gen1 := commit(t, a, map[string]string{"a": "alpha", "b": "beta"})
	gen2 := commit(t, a, map[string]string{"a": "alpha", "b": "beta", "c": strings.Repeat("gamma", 1000)})
	x := &Exporter{Catalog: a, Key: k}
	full, inc := export(t, x, gen1.ID, ""), export(t, x, gen2.ID, gen1.ID)

	res, err := Verify(ctx, source(inc), kr, nil)
	if err != nil {
		t.Fatal(err)
	}
	// gen2 adds its tree and "c"; "a" and "b" are gen1's.
	if m := res.Manifest; m.Base != gen1.ID || len(m.Blobs) != 2 || m.Bytes != int64(5000)+m.Blobs[0].Size {
		t.Errorf("incremental manifest: base %s, %d blobs, %d bytes", m.Base, len(m.Blobs), m.Bytes)
	}

	b := catalog(t)
	im := &Importer{Catalog: b}
	if _, err := im.Import(ctx, source(inc), kr); !errors.Is(err, ErrMissingBase) || !strings.Contains(err.Error(), gen1.ID) {
		t.Fatalf("incremental import without its base: %v", err)
	}
	if res, err := im.Import(ctx, source(full), kr); err != nil || res.Written != 3 {
		t.Fatalf("full import: %+v, %v", res, err)
	}
	if res, err := im.Import(ctx, source(full), kr); err != nil || !res.Present {
		t.Fatalf("second import: %+v, %v; want a no-op", res, err)
	}
	if res, err := im.Import(ctx, source(inc), kr); err != nil || res.Written != 2 {
		t.Fatalf("incremental import: %+v, %v", res, err)
	}
	for _, rec := range []*snapshot.Record{gen1, gen2} {
		want, _ := a.RawRecord(ctx, rec.ID)
		if got, err := b.RawRecord(ctx, rec.ID); err != nil || !bytes.Equal(got, want) {
			t.Errorf("snapshot %s on B: %v, or not byte-identical", rec.ID, err)
		}
	}
	if st, err := b.Verify(ctx, nil, 2); err != nil || len(st.Problems) > 0 {
		t.Errorf("verify B: %v %v", err, st.Problems)
	}

	// A different record under the same ID is a conflict.
	c := catalog(t)
	other := commit(t, c, map[string]string{"z": "zeta"})
	raw, _ := c.RawRecord(ctx, other.ID)
	fake := bytes.Replace(raw, []byte(other.ID), []byte(gen1.ID), 1)
	if err := c.Store().Meta().Put(ctx, "snapshots/"+gen1.ID, fake); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Importer{Catalog: c}).Import(ctx, source(full), kr); !errors.Is(err, ErrConflict) {
		t.Errorf("import over a different record of the same ID: %v", err)
	}
}

func TestSignatureRefused(t *testing.T) {
	ctx := context.Background()
	a := catalog(t)
	rec := commit(t, a, map[string]string{"a": "alpha"})
	data := export(t, &Exporter{Catalog: a, Key: testKey(t)}, rec.ID, "")
	other, err := signing.LoadOrCreate(filepath.Join(t.TempDir(), "o.asc"), "other")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verify(ctx, source(data), keyring(t, other), nil)
	if !errors.Is(err, ErrSignature) || !errors.Is(err, signing.ErrUnknownKey) {
		t.Errorf("verify with another keyring: %v", err)
	}
	if _, err := Verify(ctx, source(data[:len(data)/2]), keyring(t, testKey(t)), nil); !errors.Is(err, ErrCorrupt) {
		t.Errorf("verify of a truncated bundle: %v", err)
	}
}

func TestSplitParts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "b")
	data := bytes.Repeat([]byte("0123456789"), 1000)
	w, err := NewSplitWriter(file, 3000)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(data[:10])
	w.Write(data[10:])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got := w.Parts(); len(got) != 4 {
		t.Fatalf("parts %v, want 4", got)
	}
	src, err := Open(PartName(file, 0), nil)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(src.r)
	src.Close()
	if !bytes.Equal(got.Bytes(), data) {
		t.Error("parts read back differ")
	}
	os.Rename(PartName(file, 1), PartName(file, 9))
	if _, err := Open(file, nil); err == nil || !strings.Contains(err.Error(), ".001 is missing") {
		t.Errorf("missing part: %v", err)
	}
	os.Rename(PartName(file, 9), PartName(file, 1))
	os.Truncate(PartName(file, 2), 100)
	if _, err := Open(file, nil); err == nil || !strings.Contains(err.Error(), ".002 is truncated: 100 of 3000 bytes") {
		t.Errorf("truncated part: %v", err)
	}
	// A shorter re-export removes the stale parts of the longer one.
	w, _ = NewSplitWriter(file, 3000)
	w.Write(data[:4000])
	w.Close()
	if _, err := os.Stat(PartName(file, 2)); err == nil {
		t.Error("stale part .002 survived a shorter export")
	}
}

func TestKeyrings(t *testing.T) {
	dir := t.TempDir()
	pub := filepath.Join(dir, "pub.asc")
	os.WriteFile(pub, testKey(t).PublicArmored(), 0o644)
	installed := filepath.Join(dir, "data", "bundle", "trusted.gpg")
	if _, _, err := (Keyrings{Installed: installed}).Load(); err == nil || !strings.Contains(err.Error(), "--keyring") {
		t.Errorf("no keyring at all: %v", err)
	}
	k := Keyrings{Flag: pub, Installed: installed}
	for range 2 { // installing twice keeps one copy
		if err := k.Install(); err != nil {
			t.Fatal(err)
		}
	}
	el, from, err := (Keyrings{Installed: installed}).Load()
	if err != nil || from != installed || len(el) != 1 || fmt.Sprintf("%X", el[0].PrimaryKey.Fingerprint) != testKey(t).Fingerprint() {
		t.Errorf("installed keyring: %d keys from %s, %v", len(el), from, err)
	}
	if _, from, _ := (Keyrings{Configured: pub, Installed: installed}).Load(); from != pub {
		t.Errorf("the configured keyring should win over the installed one, got %s", from)
	}
}

// BenchmarkImport imports a bundle of 2000 small blobs into a fresh store
// (the store's per-blob Put dominates: see bench/bundle.sh for the
// comparison with tar).
func BenchmarkImport(b *testing.B) {
	ctx := context.Background()
	st, err := fs.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	a := snapshot.New(st)
	var es []snapshot.Entry
	for i := range 2000 {
		data := bytes.Repeat([]byte(fmt.Sprintf("%08d", i)), 512)
		in, err := a.Store().Blobs().Put(ctx, bytes.NewReader(data), store.Expect{})
		if err != nil {
			b.Fatal(err)
		}
		es = append(es, snapshot.Entry{Path: fmt.Sprintf("f/%d", i), Digest: in.Digest, Size: in.Size})
	}
	tree, _ := snapshot.NewTree(es)
	d, _ := snapshot.PutTree(ctx, a.Store().Blobs(), tree)
	rec, err := a.Commit(ctx, []snapshot.SourceRecord{{Kind: "file", Name: "f", Tree: d}})
	if err != nil {
		b.Fatal(err)
	}
	k := testKey(b)
	var buf bytes.Buffer
	if err := (&Exporter{Catalog: a, Key: k}).Export(ctx, &buf, rec.ID, ""); err != nil {
		b.Fatal(err)
	}
	p := filepath.Join(b.TempDir(), "pub.asc")
	os.WriteFile(p, k.PublicArmored(), 0o644)
	kr, _ := signing.ReadKeyring(p)
	b.ResetTimer()
	for range b.N {
		st, err := fs.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := (&Importer{Catalog: snapshot.New(st)}).Import(ctx, source(buf.Bytes()), kr); err != nil {
			b.Fatal(err)
		}
	}
}

func TestOutput(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "b.bundle")
	o, err := Create(path, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	o.Write([]byte("half"))
	if _, err := os.Stat(path); err == nil {
		t.Error("the bundle is visible before Commit")
	}
	o.Abort()
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("Abort left %v", left)
	}
	o, _ = Create(path, 0, nil)
	o.Write([]byte("whole"))
	if err := o.Commit(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 || fi.Size() != 5 {
		t.Errorf("committed bundle: %v %v", fi, err)
	}
	if _, err := Create("-", 10, nil); err == nil {
		t.Error("split stdout accepted")
	}
}
