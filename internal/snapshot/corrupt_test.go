package snapshot_test

import (
	"os"
	"testing"
)

func corrupt(t *testing.T, path string) {
	t.Helper()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("corrupted!"), 0o644); err != nil {
		t.Fatal(err)
	}
}
