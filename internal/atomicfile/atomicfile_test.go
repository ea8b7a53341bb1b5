package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestWrite(t *testing.T) {
	p := filepath.Join(t.TempDir(), "a", "b", "f.txt")
	if err := Write(p, []byte("one"), 0o640, nil); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("content %q", b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", st.Mode())
	}
	refuse := errors.New("refused")
	err := Write(p, []byte("two"), 0o644, func(tmp string) error {
		if b, _ := os.ReadFile(tmp); string(b) != "two" {
			t.Errorf("check sees %q", b)
		}
		return refuse
	})
	if !errors.Is(err, refuse) {
		t.Fatalf("Write with a failing check: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Errorf("a refused write changed the file to %q", b)
	}
	if ents, _ := os.ReadDir(filepath.Dir(p)); len(ents) != 1 {
		t.Errorf("temp files left: %v", ents)
	}
}
