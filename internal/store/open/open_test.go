package open

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/fs"
	"github.com/mirrord/mirrord/internal/store/s3/s3test"
	"github.com/mirrord/mirrord/internal/store/storetest"
)

func s3Config(t *testing.T, srv *s3test.Server, bucket string, redirect bool) config.Store {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte(s3test.SecretKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.Store{Kind: config.StoreS3, Endpoint: srv.Endpoint(), Bucket: srv.Bucket(bucket), Prefix: "p/",
		Region: "us-east-1", PathStyle: true, AccessKeyID: s3test.AccessKey, SecretAccessKeyFile: secret, Redirect: redirect}
}

func TestOpenFS(t *testing.T) {
	dir := t.TempDir()
	o, err := Open(t.Context(), Options{Store: config.Store{Kind: config.StoreFS}, DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := o.Store.(*fs.Store); !ok || o.Presign != nil {
		t.Errorf("Open(fs) = %T, presign %v", o.Store, o.Presign != nil)
	}
}

// TestOpenS3Conformance runs the suite on the store as mirrord opens it:
// S3 behind the read cache, lease locks.
func TestOpenS3Conformance(t *testing.T) {
	srv := s3test.Start(t)
	n := 0
	storetest.Run(t, func(t *testing.T) store.Store {
		n++
		o, err := Open(t.Context(), Options{Store: s3Config(t, srv, fmt.Sprintf("conf-%d", n), false),
			Cache: config.Cache{MaxSize: 64 << 20}, DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		return o.Store
	}, "ListPast1000", "LargeBlobRanges") // the s3 package runs those; listing and large blobs pass through the cache
}

func TestOpenS3(t *testing.T) {
	srv := s3test.Start(t)
	var logs bytes.Buffer
	dir := t.TempDir()
	o, err := Open(t.Context(), Options{Store: s3Config(t, srv, "open-test", true), Cache: config.Cache{MaxSize: 1 << 20},
		DataDir: dir, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "single writer") {
		t.Errorf("no start-up line saying the store is a single writer: %s", logs.String())
	}
	info, err := o.Blobs().Put(t.Context(), strings.NewReader("presigned content"), store.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Blobs().(store.Syncer).Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(srv.Dir, "open-test", "p", "blobs", "sha256", string(info.Digest[:2]), string(info.Digest))); err != nil {
		t.Errorf("blob not in the bucket under the prefix: %v", err)
	}
	u, err := o.Presign(t.Context(), info.Digest)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "presigned content" {
		t.Errorf("GET presigned URL = %d %q", resp.StatusCode, body)
	}
	secret := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(secret, nil, 0o600)
	bad := s3Config(t, srv, "open-test", false)
	bad.SecretAccessKeyFile = secret
	if _, err := Open(t.Context(), Options{Store: bad, DataDir: dir}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("Open with an empty secret file: err = %v", err)
	}
}
