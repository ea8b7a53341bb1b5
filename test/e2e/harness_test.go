// Package e2e drives the real mirrord binary against upstreams the tests
// build and serve on 127.0.0.1.
package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var mirrordBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mirrord-e2e-bin")
	if err != nil {
		panic(err)
	}
	mirrordBin = filepath.Join(dir, "mirrord")
	out, err := exec.Command("go", "build", "-race", "-o", mirrordBin, "../../cmd/mirrord").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "building mirrord: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// upstream is a fixture HTTP server whose files the test controls.
type upstream struct {
	*httptest.Server
	mu       sync.Mutex
	files    map[string][]byte
	requests atomic.Int64
	delay    time.Duration // per 4 KiB written, to make syncs slow
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{files: map[string][]byte{}}
	u.Server = httptest.NewServer(http.HandlerFunc(u.serve))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) set(path string, data []byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.files[path] = data
}

func (u *upstream) serve(w http.ResponseWriter, r *http.Request) {
	u.requests.Add(1)
	u.mu.Lock()
	data, ok := u.files[strings.TrimPrefix(r.URL.Path, "/")]
	delay := u.delay
	u.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	for off := 0; off < len(data); off += 4096 {
		end := min(off+4096, len(data))
		if _, err := w.Write(data[off:end]); err != nil {
			return
		}
		if delay > 0 {
			w.(http.Flusher).Flush()
			time.Sleep(delay)
		}
	}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// env is one mirrord installation: a config file and a data dir.
type env struct {
	t      *testing.T
	dir    string
	config string
}

func newEnv(t *testing.T) *env {
	dir := t.TempDir()
	return &env{t: t, dir: dir, config: filepath.Join(dir, "mirrord.yaml")}
}

func (e *env) writeConfig(body string) {
	e.t.Helper()
	if err := os.WriteFile(e.config, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

type result struct {
	stdout, stderr string
	code           int
}

func (e *env) run(args ...string) result {
	e.t.Helper()
	return e.runCtx(context.Background(), args...)
}

func (e *env) runCtx(ctx context.Context, args ...string) result {
	e.t.Helper()
	cmd := exec.CommandContext(ctx, mirrordBin, append([]string{"--config", e.config}, args...)...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("running mirrord %v: %v", args, err)
	}
	return result{so.String(), se.String(), code}
}

// must runs mirrord and fails the test unless it exits 0.
func (e *env) must(args ...string) string {
	e.t.Helper()
	r := e.run(args...)
	if r.code != 0 {
		e.t.Fatalf("mirrord %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// blobs returns the digests of every blob in the data dir.
func (e *env) blobs() map[string]bool {
	e.t.Helper()
	out := map[string]bool{}
	root := filepath.Join(e.dir, "data", "blobs")
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[d.Name()] = true
		}
		return nil
	})
	return out
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serve starts `mirrord serve` and waits until /healthz answers.
func (e *env) serve(addr string) string {
	e.t.Helper()
	cmd := exec.Command(mirrordBin, "--config", e.config, "serve", "--listen", addr)
	var se bytes.Buffer
	cmd.Stderr = &se
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
		}
		if e.t.Failed() {
			e.t.Logf("serve stderr:\n%s", se.String())
		}
	})
	base := "http://" + addr
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return base
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("mirrord serve did not become healthy; stderr:\n%s", se.String())
	return ""
}

func get(t *testing.T, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body
}
