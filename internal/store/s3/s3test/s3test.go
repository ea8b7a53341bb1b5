// Package s3test runs a real S3 server for tests: versitygw v1.8.0 with its
// posix backend, on 127.0.0.1 with a free port, and a fault-injecting proxy
// in front of it.
//
// The binary is $MIRRORD_VERSITYGW_BIN, else the one .ci/versitygw.sh
// caches (~/.cache/mirrord-test/versitygw-v1.8.0/versitygw), else
// `versitygw` in PATH. Without one a test is skipped, or fails when CI=true.
package s3test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/requiretool"
)

// Version is the versitygw version .ci/versitygw.sh builds and caches.
const Version = "v1.8.0"

// Test credentials of every server this package starts.
const (
	AccessKey = "mirrordtest"
	SecretKey = "mirrordtest-secret-key"
)

// Bin returns the versitygw binary, or skips t (fails it under CI=true).
func Bin(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("MIRRORD_VERSITYGW_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("MIRRORD_VERSITYGW_BIN=%s: %v", p, err)
		}
		return p
	}
	cache := os.Getenv("MIRRORD_TEST_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "mirrord-test")
		}
	}
	if cache != "" {
		p := filepath.Join(cache, "versitygw-"+Version, "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	requiretool.Missing(t, "versitygw "+Version+" not found: run .ci/versitygw.sh (it builds and caches it) or set MIRRORD_VERSITYGW_BIN")
	return ""
}

// Server is a running versitygw.
type Server struct {
	t    testing.TB
	bin  string
	Dir  string // the posix backend's root: one directory per bucket
	Addr string // host:port of versitygw itself

	mu  sync.Mutex
	cmd *exec.Cmd
	log syncBuffer
}

// Start runs versitygw on a free port and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Bin(t), Dir: t.TempDir(), Addr: "127.0.0.1:" + strconv.Itoa(freePort(t))}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Endpoint is the server's URL.
func (s *Server) Endpoint() string { return "http://" + s.Addr }

// Start (re)starts a stopped server on the same port and directory.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return
	}
	cmd := exec.Command(s.bin, "--access", AccessKey, "--secret", SecretKey, "--port", s.Addr, "posix", s.Dir)
	cmd.Stdout, cmd.Stderr = &s.log, &s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("starting versitygw: %v", err)
	}
	s.cmd = cmd
	if err := waitListening(s.Addr, 30*time.Second); err != nil {
		s.t.Fatalf("versitygw on %s: %v\n%s", s.Addr, err, s.log.String())
	}
}

// Stop kills the server (the S3 store becomes unreachable).
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	// versitygw keeps serving open connections after SIGTERM for a while;
	// a test server has nothing to flush.
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	s.cmd.Wait()
	s.cmd = nil
}

// Log returns what the server printed.
func (s *Server) Log() string { return s.log.String() }

// Bucket creates a bucket (a directory of the posix backend) and returns
// its name.
func (s *Server) Bucket(name string) string {
	s.t.Helper()
	if err := os.MkdirAll(filepath.Join(s.Dir, name), 0o755); err != nil {
		s.t.Fatal(err)
	}
	return name
}

func waitListening(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Faulty is a reverse proxy in front of a Server that answers a share of
// requests with 503 SlowDown before they reach it (like a throttling S3),
// so tests can check that clients retry.
type Faulty struct {
	URL      string
	every    atomic.Int64 // fail one request in every N (0: none)
	n        atomic.Int64
	Injected atomic.Int64 // how many 503s were sent
}

// NewFaulty starts the proxy; it fails one request in every `every`.
func NewFaulty(t testing.TB, s *Server, every int) *Faulty {
	t.Helper()
	target, _ := url.Parse(s.Endpoint())
	rp := httputil.NewSingleHostReverseProxy(target)
	f := &Faulty{}
	f.every.Store(int64(every))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n, e := f.n.Add(1), f.every.Load(); e > 0 && n%e == 0 {
			f.Injected.Add(1)
			if r.Body != nil {
				r.Body.Close()
			}
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return
		}
		rp.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	f.URL = "http://" + ln.Addr().String()
	return f
}

// Requests reports how many requests reached the proxy.
func (f *Faulty) Requests() int64 { return f.n.Load() }

// SetEvery changes the failure rate (0 turns faults off).
func (f *Faulty) SetEvery(n int) { f.every.Store(int64(n)) }
