package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSBlock(t *testing.T) {
	cfg, err := Parse("/etc/mirrord/mirrord.yaml", []byte("listen: 0.0.0.0:8443\ntls: {cert_file: tls.crt, key_file: /k/tls.key}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TLS.CertFile != "/etc/mirrord/tls.crt" || cfg.TLS.KeyFile != "/k/tls.key" {
		t.Errorf("tls paths: %+v", cfg.TLS)
	}
	if cfg.PublicURL != "https://127.0.0.1:8443" {
		t.Errorf("default public_url with tls: %q", cfg.PublicURL)
	}
	_, err = Parse("m.yaml", []byte("tls:\n  cert_file: a.crt\n"))
	if err == nil || !strings.Contains(err.Error(), "m.yaml:1") || !strings.Contains(err.Error(), "tls.key_file") {
		t.Errorf("tls without key_file: %v", err)
	}
	cfg, err = Parse("m.yaml", []byte("serve: {max_connections: 50, header_timeout: 2s}\n"))
	if err != nil || cfg.Serve.MaxConnections != 50 || cfg.Serve.HeaderTimeout.Seconds() != 2 {
		t.Errorf("serve limits: %+v %v", cfg.Serve, err)
	}
	cfg, _ = Parse("m.yaml", nil)
	if cfg.Serve.MaxConnections != DefaultMaxConnections || cfg.Serve.HeaderTimeout.Duration != DefaultHeaderTimeout {
		t.Errorf("serve defaults: %+v", cfg.Serve)
	}
	if _, err := Parse("m.yaml", []byte("serve: {max_connections: 0}\n")); err == nil {
		t.Error("max_connections: 0 accepted")
	}
}

// A token file other users can read is refused, naming its mode.
func TestTokenFileMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o644) // whatever the umask
	cfg, err := Parse(filepath.Join(dir, "mirrord.yaml"), []byte("auth: {token_file: token}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Token(); err == nil || !strings.Contains(err.Error(), "mode 0644") || !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Errorf("world-readable token: %v", err)
	}
	for _, mode := range []os.FileMode{0o600, 0o640, 0o400} {
		os.Chmod(path, mode)
		if tok, err := cfg.Token(); err != nil || tok != "s3cret" {
			t.Errorf("mode %04o: %q, %v", mode, tok, err)
		}
	}
}
