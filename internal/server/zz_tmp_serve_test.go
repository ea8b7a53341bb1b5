package server

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestTmpServeForever(t *testing.T) {
	addr := os.Getenv("MIRRORD_TMP_LISTEN")
	if addr == "" {
		t.Skip()
	}
	f := newFixture(t, nil)
	root := os.Getenv("MIRRORD_TMP_ROOT")
	for _, n := range []string{"small.bin", "large.bin"} {
		os.WriteFile(filepath.Join(root, n), f.files["file/images/"+n], 0o644)
	}
	os.WriteFile(filepath.Join(root, "ids"), []byte(f.s2), 0o644)
	srv := &http.Server{Addr: addr, Handler: f.srv}
	go srv.ListenAndServe()
	time.Sleep(time.Duration(1<<62))
}
