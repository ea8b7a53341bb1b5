package fs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/storetest"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

func TestLayout(t *testing.T) {
	l := layout("/srv/m")
	d := store.DigestOf([]byte("hello")) // 2cf24dba…
	tests := []struct {
		name, got, want string
	}{
		{"blobsDir", l.blobsDir(), "/srv/m/blobs/sha256"},
		{"tmpDir", l.tmpDir(), "/srv/m/tmp"},
		{"metaDir", l.metaDir(), "/srv/m/meta"},
		{"locksDir", l.locksDir(), "/srv/m/locks"},
		{"fanout", l.fanout(d), "/srv/m/blobs/sha256/2c"},
		{"blob", l.blob(d), "/srv/m/blobs/sha256/2c/" + string(d)},
		{"meta top", l.meta("channels"), "/srv/m/meta/channels"},
		{"meta nested", l.meta("snapshots/debian/2024-01-01"), "/srv/m/meta/snapshots/debian/2024-01-01"},
		{"lock", l.lock("gc"), "/srv/m/locks/gc.lock"},
		{"lock nested", l.lock("sync/debian"), "/srv/m/locks/sync/debian.lock"},
	}
	for _, tc := range tests {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func TestBlobPath(t *testing.T) {
	s := openTemp(t)
	b := s.Blobs().(*Blobs)
	d := store.DigestOf([]byte("x"))
	tests := []struct {
		d    store.Digest
		want string
	}{
		{d, filepath.Join(s.Dir(), "blobs", "sha256", string(d[:2]), string(d))},
		{"", ""},
		{"../../etc/passwd", ""},
		{store.Digest("../" + strings.Repeat("a", 61)), ""},
		{store.Digest(strings.ToUpper(string(d))), ""},
	}
	for _, tc := range tests {
		if got := b.BlobPath(tc.d); got != tc.want {
			t.Errorf("BlobPath(%q) = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestOpenRelativeDir(t *testing.T) {
	t.Chdir(t.TempDir())
	s, err := Open("store")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(s.Dir()) {
		t.Errorf("Dir() = %q, want absolute", s.Dir())
	}
	for _, sub := range []string{"blobs/sha256", "tmp", "meta", "locks"} {
		if fi, err := os.Stat(filepath.Join("store", sub)); err != nil || !fi.IsDir() {
			t.Errorf("layout dir %s: %v", sub, err)
		}
	}
}

func TestBlobFileMode(t *testing.T) {
	s := openTemp(t)
	info, err := s.Blobs().Put(t.Context(), strings.NewReader("content"), store.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	path := s.Blobs().(store.Filer).BlobPath(info.Digest)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o444 {
		t.Errorf("blob mode = %v, want 0444", fi.Mode().Perm())
	}
	b, err := s.Blobs().Open(t.Context(), info.Digest)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f := b.(*BlobFile).File()
	if f == nil || f.Name() != path {
		t.Errorf("File() = %v, want the file at %s", f, path)
	}
}

// failReader fails the test if Put reads it.
type failReader struct{ t *testing.T }

func (f failReader) Read([]byte) (int, error) {
	f.t.Error("Put read r although the blob was present")
	return 0, errors.New("must not be read")
}

func TestPutPresentSkipsReadAndTouches(t *testing.T) {
	s := openTemp(t)
	data := []byte("already here")
	d := store.DigestOf(data)
	if _, err := s.Blobs().Put(t.Context(), bytes.NewReader(data), store.Expect{}); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	path := s.blobs.BlobPath(d)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
	info, err := s.Blobs().Put(t.Context(), failReader{t}, store.Expect{Digest: d})
	if err != nil {
		t.Fatalf("Put of present blob: %v", err)
	}
	if time.Since(info.ModTime) > time.Minute || info.Size != int64(len(data)) {
		t.Errorf("Put info = %+v, want fresh ModTime and size %d", info, len(data))
	}
	_, err = s.Blobs().Put(t.Context(), failReader{t}, store.Expect{Digest: d, Size: 999})
	if !errors.Is(err, store.ErrSizeMismatch) {
		t.Errorf("Put of present blob with wrong size: err = %v, want ErrSizeMismatch", err)
	}
}

func TestRePutWithoutDigestTouches(t *testing.T) {
	s := openTemp(t)
	data := []byte("re-put")
	info, err := s.Blobs().Put(t.Context(), bytes.NewReader(data), store.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-48 * time.Hour)
	if err := os.Chtimes(s.blobs.BlobPath(info.Digest), old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Blobs().Put(t.Context(), bytes.NewReader(data), store.Expect{}); err != nil {
		t.Fatal(err)
	}
	st, err := s.Blobs().Stat(t.Context(), info.Digest)
	if err != nil || time.Since(st.ModTime) > time.Minute {
		t.Errorf("Stat after re-Put = %+v, %v; want a fresh ModTime", st, err)
	}
	if n := countTemps(t, s); n != 0 {
		t.Errorf("%d temp files left after re-Put", n)
	}
}

func countTemps(t *testing.T, s *Store) int {
	t.Helper()
	entries, err := os.ReadDir(s.l.tmpDir())
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestCleanTempCrashLeftover(t *testing.T) {
	s := openTemp(t)
	data := []byte("a complete blob that never got renamed")
	d := store.DigestOf(data)
	crashed := filepath.Join(s.l.tmpDir(), blobTempPrefix+"123456"+tempSuffix)
	fresh := filepath.Join(s.l.tmpDir(), blobTempPrefix+"654321"+tempSuffix)
	foreign := filepath.Join(s.l.tmpDir(), "not-ours")
	for _, p := range []string{crashed, fresh, foreign} {
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{crashed, foreign} {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
	}
	assertNoBlob(t, s, d)
	n, err := s.Blobs().CleanTemp(t.Context(), time.Hour)
	if err != nil || n != 1 {
		t.Fatalf("CleanTemp(1h) = %d, %v; want 1, nil", n, err)
	}
	for p, want := range map[string]bool{crashed: false, fresh: true, foreign: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("after CleanTemp, %s exists = %v, want %v", filepath.Base(p), err == nil, want)
		}
	}
	assertNoBlob(t, s, d)
}

func assertNoBlob(t *testing.T, s *Store, d store.Digest) {
	t.Helper()
	if _, err := s.Blobs().Stat(t.Context(), d); !store.IsNotExist(err) {
		t.Errorf("Stat(%s) = %v, want ErrNotFound", d, err)
	}
	err := s.Blobs().List(t.Context(), func(i store.Info) error {
		return fmt.Errorf("unexpected blob %s", i.Digest)
	})
	if err != nil {
		t.Errorf("List: %v", err)
	}
}

func TestListIgnoresStrangers(t *testing.T) {
	s := openTemp(t)
	d := store.DigestOf([]byte("real"))
	if _, err := s.Blobs().Put(t.Context(), strings.NewReader("real"), store.Expect{}); err != nil {
		t.Fatal(err)
	}
	other := store.DigestOf([]byte("misplaced"))
	wrongFan := "00"
	if string(other[:2]) == wrongFan {
		wrongFan = "01"
	}
	strangers := []string{
		filepath.Join(s.l.fanout(d), "garbage"),
		filepath.Join(s.l.fanout(d), string(d)+".tmp"),
		filepath.Join(s.l.blobsDir(), wrongFan, string(other)),
		filepath.Join(s.l.blobsDir(), "zz", string(other)),
		filepath.Join(s.l.blobsDir(), "README"),
	}
	for _, p := range strangers {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var got []store.Digest
	err := s.Blobs().List(t.Context(), func(i store.Info) error {
		got = append(got, i.Digest)
		return nil
	})
	if err != nil || len(got) != 1 || got[0] != d {
		t.Errorf("List = %v, %v; want just %s", got, err, d)
	}
}

func TestMetaListIgnoresTempAndDotFiles(t *testing.T) {
	s := openTemp(t)
	if err := s.Meta().Put(t.Context(), "a", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{".hidden", ".tmp-123", "bad name"} {
		if err := os.WriteFile(filepath.Join(s.l.metaDir(), name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Meta().List(t.Context(), "")
	if err != nil || len(got) != 1 || got[0] != "a" {
		t.Errorf("List = %v, %v; want [a]", got, err)
	}
}

const lockChildEnv = "MIRRORD_FS_TEST_LOCK_CHILD"

// TestMain runs the child of TestLockDiesWithProcess when the environment
// asks for it, and the tests otherwise.
func TestMain(m *testing.M) {
	if dir := os.Getenv(lockChildEnv); dir != "" {
		holdLock(dir)
	}
	os.Exit(m.Run())
}

// holdLock takes the lock, reports it and waits to be killed.
func holdLock(dir string) {
	s, err := Open(dir)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	unlock, err := s.TryLock(context.Background(), "held")
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println("locked")
	time.Sleep(time.Minute)
	unlock()
	os.Exit(1) // the parent should have killed us
}

func TestLockDiesWithProcess(t *testing.T) {
	s := openTemp(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+s.Dir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitForLine(t, out, "locked")

	if _, err := s.TryLock(t.Context(), "held"); !errors.Is(err, store.ErrLocked) {
		t.Fatalf("TryLock while child holds it: err = %v, want ErrLocked", err)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	cmd.Wait()
	unlock, err := s.TryLock(t.Context(), "held")
	if err != nil {
		t.Fatalf("TryLock after holder was killed: %v", err)
	}
	unlock()
}

// waitForLine reads r until a line equal to want, failing after 20s.
func waitForLine(t *testing.T, r io.Reader, want string) {
	t.Helper()
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(r)
		var seen []string
		for sc.Scan() {
			if sc.Text() == want {
				found <- ""
				return
			}
			seen = append(seen, sc.Text())
		}
		found <- strings.Join(seen, "\n")
	}()
	select {
	case seen := <-found:
		if seen != "" {
			t.Fatalf("child exited without %q; output:\n%s", want, seen)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("child did not print %q within 20s", want)
	}
}

// TestMetaVersionAcrossStores: a write through one Store (another process,
// in real use) moves the Version another Store on the same directory reads.
func TestMetaVersionAcrossStores(t *testing.T) {
	dir := t.TempDir()
	reader, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	writer, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	v := reader.Meta().(store.Versioner)
	before, err := v.Version()
	if err != nil {
		t.Fatal(err)
	}
	if err := writer.Meta().Put(context.Background(), "channels/production", []byte("x")); err != nil {
		t.Fatal(err)
	}
	after, err := v.Version()
	if err != nil {
		t.Fatal(err)
	}
	if after == before {
		t.Fatal("a write through another Store did not move Version")
	}
}
