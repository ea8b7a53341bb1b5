// Package consultest runs a real Consul agent for tests, on 127.0.0.1 with
// free ports.
//
// The agent binary is $MIRRORD_CONSUL_BIN, else the one .ci/consul.sh
// caches (~/.cache/mirrord-test/consul-v1.20.1/consul), else `consul` in
// PATH. Without one a test is skipped, or fails when CI=true.
package consultest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/mirrord/mirrord/internal/requiretool"
)

// Version is the Consul version .ci/consul.sh builds and caches.
const Version = "v1.20.1"

// Bin returns the consul binary, or skips t (fails it under CI=true).
func Bin(t testing.TB) string {
	t.Helper()
	return find(t, "MIRRORD_CONSUL_BIN", "consul-"+Version, "consul", ".ci/consul.sh")
}

// find looks for a tool: env var, the test cache, PATH.
func find(t testing.TB, env, cacheDir, name, script string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", env, p, err)
		}
		return p
	}
	cache := os.Getenv("MIRRORD_TEST_CACHE")
	if cache == "" {
		if home, err := os.UserHomeDir(); err == nil {
			cache = filepath.Join(home, ".cache", "mirrord-test")
		}
	}
	if p := filepath.Join(cache, cacheDir, name); cache != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	msg := fmt.Sprintf("no %s binary: run %s (or set %s)", name, script, env)
	requiretool.Missing(t, msg)
	return ""
}

// Options configures an agent.
type Options struct {
	// Persistent runs a one-node server with a data dir instead of -dev,
	// so KV, sessions and registrations survive Stop and Start (slower to
	// start: about 2-3 s).
	Persistent bool
}

// Agent is a running (or stopped) Consul agent.
type Agent struct {
	// Addr is the HTTP address, 127.0.0.1:PORT.
	Addr string

	t    testing.TB
	bin  string
	args []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	log  *syncBuffer
}

// Start starts an agent, waits until it has a leader, and stops it when
// the test ends.
func Start(t testing.TB, opt Options) *Agent {
	t.Helper()
	a := &Agent{t: t, bin: Bin(t), log: &syncBuffer{}}
	http := freePort(t)
	a.Addr = "127.0.0.1:" + strconv.Itoa(http)
	a.args = []string{"agent", "-bind", "127.0.0.1", "-client", "127.0.0.1",
		"-http-port", strconv.Itoa(http), "-https-port", "-1", "-dns-port", "-1", "-grpc-port", "-1", "-grpc-tls-port", "-1",
		"-serf-lan-port", strconv.Itoa(freePort(t)), "-serf-wan-port", strconv.Itoa(freePort(t)),
		"-server-port", strconv.Itoa(freePort(t)), "-log-level", "info"}
	if opt.Persistent {
		a.args = append(a.args, "-server", "-bootstrap-expect", "1", "-data-dir", t.TempDir(), "-node", "mirrord-test",
			"-hcl", "performance { raft_multiplier = 1 }")
	} else {
		a.args = append(a.args, "-dev")
	}
	t.Cleanup(func() {
		a.Stop()
		if t.Failed() {
			t.Logf("consul agent log (last 4 KiB):\n%s", a.log.tail(4096))
		}
	})
	a.Start()
	return a
}

// Start starts the agent again after Stop, on the same ports (and data).
func (a *Agent) Start() {
	a.t.Helper()
	cmd := exec.Command(a.bin, a.args...)
	cmd.Stdout, cmd.Stderr = a.log, a.log
	if err := cmd.Start(); err != nil {
		a.t.Fatalf("starting consul: %v", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	a.mu.Lock()
	a.cmd, a.done = cmd, done
	a.mu.Unlock()
	if err := a.waitReady(60 * time.Second); err != nil {
		a.t.Fatalf("consul agent at %s: %v\nlog:\n%s", a.Addr, err, a.log.tail(4096))
	}
}

// Stop stops the agent (SIGTERM, then SIGKILL after 10 s) and waits for it.
func (a *Agent) Stop() {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

// URL is the agent's HTTP base URL.
func (a *Agent) URL() string { return "http://" + a.Addr }

// Client returns an API client for the agent.
func (a *Agent) Client() *api.Client {
	a.t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = a.Addr
	c, err := api.NewClient(cfg)
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

// Log returns what the agent printed so far.
func (a *Agent) Log() string { return a.log.String() }

// waitReady waits until the agent has a leader and answers KV reads.
func (a *Agent) waitReady(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last string
	for {
		a.mu.Lock()
		done := a.done
		a.mu.Unlock()
		select {
		case <-done:
			return fmt.Errorf("exited while starting")
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %s", timeout, last)
		case <-time.After(50 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(ctx, "GET", a.URL()+"/v1/kv/consultest-ready-probe", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			last = err.Error()
			continue
		}
		resp.Body.Close()
		if (resp.StatusCode == 404 || resp.StatusCode == 200) && resp.Header.Get("X-Consul-Knownleader") == "true" {
			return nil
		}
		last = resp.Status
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

// syncBuffer is a bytes.Buffer safe for the agent's two output streams.
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

func (s *syncBuffer) tail(n int) string {
	str := s.String()
	if len(str) > n {
		str = str[len(str)-n:]
		if i := strings.IndexByte(str, '\n'); i >= 0 {
			str = str[i+1:]
		}
	}
	return str
}

// TemplateBin returns the consul-template binary: $MIRRORD_CONSUL_TEMPLATE_BIN,
// the one .ci/consul-template.sh caches, or `consul-template` in PATH;
// skipped (failed under CI=true) without one.
func TemplateBin(t testing.TB) string {
	t.Helper()
	return find(t, "MIRRORD_CONSUL_TEMPLATE_BIN", "consul-template-"+TemplateVersion, "consul-template", ".ci/consul-template.sh")
}

// TemplateVersion is the consul-template version .ci/consul-template.sh builds.
const TemplateVersion = "v0.41.1"
