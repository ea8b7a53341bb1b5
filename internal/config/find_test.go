package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	named := filepath.Join(dir, "named.yaml")
	os.WriteFile(named, nil, 0o644)
	if p, err := Find(named, "/nonexistent"); err != nil || p != named {
		t.Errorf("--config wins: %q %v", p, err)
	}
	if p, err := Find("", named); err != nil || p != named {
		t.Errorf("$MIRRORD_CONFIG: %q %v", p, err)
	}
	if _, err := Find(filepath.Join(dir, "missing.yaml"), ""); !errors.Is(err, ErrNoConfig) || !strings.Contains(err.Error(), "--config names") {
		t.Errorf("missing --config file: %v", err)
	}
	_, err := Find("", "")
	if _, statErr := os.Stat("/etc/mirrord/mirrord.yaml"); statErr == nil {
		t.Log("/etc/mirrord/mirrord.yaml exists here; only checking ./mirrord.yaml")
	} else if !errors.Is(err, ErrNoConfig) {
		t.Fatalf("nothing to find: %v", err)
	} else {
		for _, want := range []string{"--config", "$MIRRORD_CONFIG", "./mirrord.yaml", "/etc/mirrord/mirrord.yaml", "mirrord init"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
	}
	os.WriteFile("mirrord.yaml", nil, 0o644)
	if p, err := Find("", ""); err != nil || p != "mirrord.yaml" {
		t.Errorf("./mirrord.yaml: %q %v", p, err)
	}
}
