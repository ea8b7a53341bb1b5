package fetch

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/store"
)

// A local (file://) upstream whose tree holds a symlink, a hard link or a
// FIFO where a file is expected: each is refused at once (no retries),
// naming the path, and nothing is stored; plain files still work.
func TestFileTransportRefusesLinks(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("signing key\n"), 0o600)
	plain := filepath.Join(dir, "plain.deb")
	os.WriteFile(plain, []byte("a real file\n"), 0o644)
	os.Symlink(outside, filepath.Join(dir, "symlink.deb"))
	if err := os.Link(outside, filepath.Join(dir, "hardlink.deb")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.deb"), 0o644); err != nil {
		t.Fatal(err)
	}
	blobs := newMemBlobs()
	f := New(blobs, Options{Client: &http.Client{Transport: fileOnly()}, Backoff: time.Millisecond})
	ctx := context.Background()
	if _, err := f.Blob(ctx, "file://"+plain, store.Expect{}); err != nil {
		t.Fatalf("plain file: %v", err)
	}
	for name, want := range map[string]string{
		"symlink.deb": "is a symbolic link", "hardlink.deb": "has 2 hard links", "fifo.deb": "not a file",
	} {
		p := filepath.Join(dir, name)
		_, err := f.Blob(ctx, "file://"+p, store.Expect{})
		if !errors.Is(err, ErrUnsafeLocalFile) || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v", name, err)
		}
		if err != nil && strings.Contains(err.Error(), "attempts") {
			t.Errorf("%s was retried: %v", name, err)
		}
		if _, err := f.Get(ctx, Request{URL: "file://" + p}); !errors.Is(err, ErrUnsafeLocalFile) {
			t.Errorf("Get %s: %v", name, err)
		}
	}
	if len(blobs.blobs) != 1 {
		t.Errorf("%d blobs stored, want only the plain file's", len(blobs.blobs))
	}
}

func fileOnly() http.RoundTripper {
	tr := &http.Transport{}
	tr.RegisterProtocol("file", FileTransport())
	return tr
}
