package deploy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/source"
)

// TestInstall: files written under root behind the header, the key fetched
// once per place, the git include added once; a second run changes nothing.
func TestInstall(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/gitconfig"), []byte("[user]\n\tname = x"), 0o644)
	plan := source.ClientPlan{
		Files:    []source.PlannedFile{{Path: "/etc/apt/sources.list.d/mirrord-d.sources", Text: "Types: deb\n"}, {Path: "/etc/mirrord/gitconfig", Text: "[url]\n"}},
		Keys:     []string{"/etc/apt/keyrings/mirrord.asc"},
		Includes: [][2]string{{"/etc/gitconfig", "/etc/mirrord/gitconfig"}},
	}
	fetches := 0
	key := func(context.Context) ([]byte, error) { fetches++; return []byte("KEY"), nil }
	var out strings.Builder
	if err := Install(context.Background(), &out, root, "# h\n", plan, key); err != nil {
		t.Fatal(err)
	}
	read := func(p string) string { b, _ := os.ReadFile(filepath.Join(root, p)); return string(b) }
	if read("etc/apt/sources.list.d/mirrord-d.sources") != "# h\nTypes: deb\n" || read("etc/apt/keyrings/mirrord.asc") != "KEY" {
		t.Errorf("files: %q %q", read("etc/apt/sources.list.d/mirrord-d.sources"), read("etc/apt/keyrings/mirrord.asc"))
	}
	if g := read("etc/gitconfig"); g != "[user]\n\tname = x\n[include]\n\tpath = "+filepath.Join(root, "etc/mirrord/gitconfig")+"\n" {
		t.Errorf("gitconfig %q", g)
	}
	out.Reset()
	if err := Install(context.Background(), &out, root, "# h\n", plan, key); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "wrote") || strings.Contains(out.String(), "included") || strings.Count(read("etc/gitconfig"), "[include]") != 1 {
		t.Errorf("second run changed things:\n%s", out.String())
	}
	if err := Install(context.Background(), &out, root, "", plan, func(context.Context) ([]byte, error) { return nil, errors.New("no key") }); err == nil {
		t.Error("a failed key fetch was not an error")
	}
}
