package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStoreS3(t *testing.T) {
	data := `store:
  kind: s3
  endpoint: http://127.0.0.1:9000
  bucket: mirrord
  prefix: prod
  path_style: true
  access_key_id: KEY
  secret_access_key_file: s3.secret
  redirect: true
cache: {max_size: 512MiB}
`
	cfg, err := Parse("/etc/mirrord/m.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	want := Store{Kind: "s3", Endpoint: "http://127.0.0.1:9000", Bucket: "mirrord", Prefix: "prod/", Region: "us-east-1",
		PathStyle: true, AccessKeyID: "KEY", SecretAccessKeyFile: "/etc/mirrord/s3.secret", Redirect: true}
	if cfg.Store != want {
		t.Errorf("Store = %+v\nwant %+v", cfg.Store, want)
	}
	if cfg.Cache.MaxSize != 512<<20 {
		t.Errorf("Cache.MaxSize = %d, want 512MiB", cfg.Cache.MaxSize)
	}
	cfg, err = Parse("/m.yaml", []byte("store: {kind: s3, bucket: b-1.x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Cache.MaxSize != DefaultCacheMax || cfg.Store.Region != "us-east-1" || cfg.Store.Prefix != "" {
		t.Errorf("defaults: %+v %+v", cfg.Store, cfg.Cache)
	}
}

func TestSecretAccessKey(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "secret")
	if err := os.WriteFile(p, []byte("  s3cr3t\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if k, err := (Store{SecretAccessKeyFile: p}).SecretAccessKey(); err != nil || k != "s3cr3t" {
		t.Errorf("SecretAccessKey = %q, %v", k, err)
	}
	os.WriteFile(p, []byte("\n"), 0o600)
	if _, err := (Store{SecretAccessKeyFile: p}).SecretAccessKey(); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty secret file: err = %v", err)
	}
	if _, err := (Store{SecretAccessKeyFile: filepath.Join(dir, "nope")}).SecretAccessKey(); err == nil {
		t.Errorf("missing secret file: no error")
	}
}

func TestByteSize(t *testing.T) {
	for in, want := range map[string]int64{"20GiB": 20 << 30, "512 MiB": 512 << 20, "10GB": 10e9, "1.5KiB": 1536, "4096": 4096, "0": 0, "7B": 7, "3k": 3072, "3KB": 3000} {
		cfg, err := Parse("/m.yaml", []byte("store: {kind: s3, bucket: bkt}\ncache: {max_size: "+in+"}\n"))
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		if int64(cfg.Cache.MaxSize) != want {
			t.Errorf("%q = %d, want %d", in, cfg.Cache.MaxSize, want)
		}
	}
	if s := ByteSize(20 << 30).String(); s != "20GiB" {
		t.Errorf("String = %q", s)
	}
}

func TestStoreErrors(t *testing.T) {
	tests := []struct{ data, want string }{
		{"store:\n  kind: gcs\n", `m.yaml:2: store.kind: unknown store kind "gcs"`},
		{"store:\n  kind: s3\n", "m.yaml:1: store.bucket: required with kind: s3"},
		{"store:\n  kind: s3\n  bucket: Bad_Bucket\n", `m.yaml:3: store.bucket: invalid bucket name "Bad_Bucket"`},
		{"store:\n  kind: s3\n  bucket: b1b\n  endpoint: ftp://x\n", "m.yaml:4: store.endpoint: invalid URL"},
		{"store:\n  kind: s3\n  bucket: b1b\n  prefix: /abs\n", `m.yaml:4: store.prefix: invalid prefix "/abs"`},
		{"store:\n  kind: s3\n  bucket: b1b\n  prefix: a/../b\n", "m.yaml:4: store.prefix: invalid prefix"},
		{"store:\n  kind: s3\n  bucket: b1b\n  access_key_id: K\n", "m.yaml:4: store.access_key_id: needs secret_access_key_file"},
		{"store:\n  kind: s3\n  bucket: b1b\n  secret_access_key_file: f\n", "m.yaml:4: store.secret_access_key_file: needs access_key_id"},
		{"store:\n  bucket: b1b\n", "m.yaml:2: store.bucket: only used with kind: s3"},
		{"cache:\n  max_size: 1GiB\n", "m.yaml:2: cache.max_size: only used with store kind: s3"},
		{"store: {kind: s3, bucket: b1b}\ncache:\n  max_size: lots\n", `m.yaml:3: cache.max_size: invalid size "lots"`},
		{"store: {kind: s3, bucket: b1b}\ncache:\n  max_size: 5XB\n", `m.yaml:3: cache.max_size: invalid size "5XB"`},
		{"store:\n  kind: s3\n  bucket: b1b\n  redirekt: true\n", `m.yaml:4: unknown key "redirekt" in store (did you mean "redirect"?)`},
	}
	for _, tc := range tests {
		_, err := Parse("m.yaml", []byte(tc.data))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err = %v\nwant it to contain %q", tc.data, err, tc.want)
		}
	}
}
