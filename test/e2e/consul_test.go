package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"
	"gopkg.in/yaml.v3"

	"github.com/mirrord/mirrord/internal/consul/consultest"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// consulSetup is one mirrord installation wired to a Consul agent, with
// two snapshots whose file/images/hello.txt differ.
type consulSetup struct {
	*env
	agent           *consultest.Agent
	prefix, service string
	id1, id2        string
	body1, body2    []byte
	up              *upstream
	interval        string
}

// consulYAML is a config with one file source serving hello.txt = body.
func (s *consulSetup) yaml(body []byte) string {
	sync := ""
	if s.interval != "" {
		sync = "sync: {interval: " + s.interval + "}\n"
	}
	return fmt.Sprintf(`data_dir: data
auth: {token_file: token}
consul: {address: %q, prefix: %q, service: %q}
%sfile:
  - name: images
    files:
      - {url: %s/hello-%s.txt, path: hello.txt, sha256: %s}
`, s.agent.Addr, s.prefix, s.service, sync, s.up.URL, sha(body)[:8], sha(body))
}

// newConsulSetup syncs two snapshots (hello.txt "one", then "two"); the
// config ends up serving "two".
func newConsulSetup(t *testing.T, agent *consultest.Agent, prefix, service string) *consulSetup {
	s := &consulSetup{env: newEnv(t), agent: agent, prefix: prefix, service: service, up: newUpstream(t),
		body1: []byte("one\n"), body2: []byte("two\n")}
	os.WriteFile(filepath.Join(s.dir, "token"), []byte("s3cret\n"), 0o600)
	for _, b := range [][]byte{s.body1, s.body2} {
		s.up.set("hello-"+sha(b)[:8]+".txt", b)
	}
	s.writeConfig(s.yaml(s.body1))
	s.id1 = s.sync()
	s.writeConfig(s.yaml(s.body2))
	s.id2 = s.sync()
	return s
}

// replica is one `mirrord serve` process.
type replica struct {
	t    *testing.T
	cmd  *exec.Cmd
	base string
	id   string // its Consul service ID
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startReplica starts `mirrord serve` on a free port and waits for /healthz.
func startReplica(t *testing.T, e *env, service string, extraEnv ...string) *replica {
	t.Helper()
	addr := freePort(t)
	cmd := exec.Command(mirrordBin, "--config", e.config, "serve", "--listen", addr)
	// A fast health check: replicas pass it (and may take the sync lock)
	// within a second, and a killed one fails it as fast.
	cmd.Env = append(append(os.Environ(), "MIRRORD_CONSUL_CHECK_INTERVAL=500ms"), extraEnv...)
	r := &replica{t: t, cmd: cmd, base: "http://" + addr, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = r.out
	host, _ := os.Hostname()
	r.id = fmt.Sprintf("%s-%s-%s", service, host, addr[strings.LastIndexByte(addr, ':')+1:])
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { cmd.Wait(); close(r.done) }()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("replica %s stderr:\n%s", r.id, r.out.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(r.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica did not become healthy:\n%s", r.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends the replica cleanly (SIGINT), as an operator would.
func (r *replica) stop() {
	select {
	case <-r.done:
		return
	default:
	}
	r.cmd.Process.Signal(os.Interrupt)
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		r.cmd.Process.Kill()
		<-r.done
	}
}

// kill ends the replica with SIGKILL: no deregistration, no lock release.
func (r *replica) kill() {
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

func (r *replica) count(msg string) int { return strings.Count(r.out.String(), msg) }

// keepAlive polls fast without a new connection per request.
var keepAlive = &http.Client{Timeout: 10 * time.Second}

// servedWithin polls url until it serves want and returns how long that
// took from start. Beyond limit the test fails (a watch that stopped
// working would never get there).
func servedWithin(t *testing.T, url string, want []byte, start time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		resp, err := keepAlive.Get(url)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && bytes.Equal(body, want) {
				return time.Since(start)
			}
		}
		if time.Since(start) > limit {
			t.Fatalf("%s did not serve %q within %s", url, want, limit)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func apiPost(t *testing.T, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Content-Type", "application/json")
	resp, err := keepAlive.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func channelOf(t *testing.T, base, name string) snapshot.Channel {
	t.Helper()
	resp, body := get(t, base+"/api/v1/channels/"+name, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET channel %s: %d %s", name, resp.StatusCode, body)
	}
	var ch snapshot.Channel
	if err := json.Unmarshal(body, &ch); err != nil {
		t.Fatal(err)
	}
	return ch
}

func waitFor(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// healthyIDs lists the passing instances of service with their meta
// latest_snapshot.
func healthyIDs(t *testing.T, c *api.Client, service string) map[string]string {
	entries, _, err := c.Health().Service(service, "", true, nil)
	if err != nil {
		return nil
	}
	out := map[string]string{}
	for _, e := range entries {
		out[e.Service.ID] = e.Service.Meta["latest_snapshot"]
	}
	return out
}

func TestConsul(t *testing.T) {
	agent := consultest.Start(t, consultest.Options{})
	t.Run("registration", func(t *testing.T) { testConsulRegistration(t, agent) })
	t.Run("replicas", func(t *testing.T) { testConsulReplicas(t, agent) })
	t.Run("leader", func(t *testing.T) { testConsulLeader(t, agent) })
}

func testConsulRegistration(t *testing.T, agent *consultest.Agent) {
	s := newConsulSetup(t, agent, "reg/", "mirrord-reg")
	s.must("snapshot", "promote", s.id1, "production")
	r := startReplica(t, s.env, s.service)
	c := agent.Client()
	waitFor(t, "a passing registration with meta and tags", 20*time.Second, func() bool {
		entries, _, err := c.Health().Service(s.service, "", true, nil)
		if err != nil || len(entries) != 1 {
			return false
		}
		svc := entries[0].Service
		return svc.ID == r.id && svc.Meta["latest_snapshot"] == s.id2 && slices.Equal(svc.Tags, []string{"channel-production"}) &&
			svc.Meta["channel-production"] == s.id1 &&
			"http://"+svc.Address+":"+fmt.Sprint(svc.Port) == r.base
	})
	waitFor(t, "the snapshot summaries in KV", 10*time.Second, func() bool {
		p, _, err := c.KV().Get(s.prefix+"snapshots/"+s.id2, nil)
		return err == nil && p != nil && strings.Contains(string(p.Value), `"id": "`+s.id2+`"`)
	})
	// A new channel, or a channel moving, re-registers without restarting.
	s.must("snapshot", "promote", s.id2, "staging")
	s.must("snapshot", "promote", s.id2, "production")
	waitFor(t, "tag channel-staging and the move of production", 10*time.Second, func() bool {
		entries, _, _ := c.Health().Service(s.service, "channel-staging", true, nil)
		return len(entries) == 1 && entries[0].Service.Meta["channel-production"] == s.id2
	})
	r.stop()
	if entries, _, err := c.Catalog().Service(s.service, "", nil); err != nil || len(entries) != 0 {
		t.Fatalf("after a clean shutdown the catalog still has %d instances (%v)", len(entries), err)
	}
	if !strings.Contains(r.out.String(), "deregistered from consul") {
		t.Errorf("no deregistration logged:\n%s", r.out.String())
	}
}

// testConsulReplicas: two replicas on one data_dir follow promotions and
// rollbacks made through either (or the CLI), concurrent promotions are all
// recorded, and nodes find them through consul-template, hiera-consul keys
// and client-config --consul. It uses the default prefix and service name,
// which the examples use.
func testConsulReplicas(t *testing.T, agent *consultest.Agent) {
	s := newConsulSetup(t, agent, "mirrord/", "mirrord")
	s.must("snapshot", "promote", s.id1, "production")
	a := startReplica(t, s.env, s.service)
	b := startReplica(t, s.env, s.service)
	chanPath := "/channels/production/file/images/hello.txt"
	servedWithin(t, a.base+chanPath, s.body1, time.Now(), 5*time.Second)
	servedWithin(t, b.base+chanPath, s.body1, time.Now(), 5*time.Second)

	start := time.Now()
	if code, body := apiPost(t, a.base+"/api/v1/channels/production/promote", `{"snapshot":"`+s.id2+`"}`); code != 200 {
		t.Fatalf("promote through A: %d %s", code, body)
	}
	t.Logf("promotion through A's API: B serves it %s after the request began", servedWithin(t, b.base+chanPath, s.body2, start, 5*time.Second))

	start = time.Now()
	s.must("snapshot", "promote", s.id1, "production")
	cliDone := time.Since(start)
	took := servedWithin(t, b.base+chanPath, s.body1, start, 5*time.Second)
	t.Logf("promotion by the CLI: B serves it %s after the CLI returned (the -race CLI itself took %s)", max(0, took-cliDone), cliDone)

	start = time.Now()
	if code, body := apiPost(t, b.base+"/api/v1/channels/production/rollback", ""); code != 200 {
		t.Fatalf("rollback through B: %d %s", code, body)
	}
	t.Logf("rollback through B's API: A serves it %s after the request began", servedWithin(t, a.base+chanPath, s.body2, start, 5*time.Second))
	ha, hb := channelOf(t, a.base, "production"), channelOf(t, b.base, "production")
	if len(ha.History) != 4 || len(hb.History) != 4 || ha.Snapshot != s.id2 || hb.Snapshot != s.id2 {
		t.Fatalf("history: A %+v, B %+v; want 4 moves ending at %s on both", ha, hb, s.id2)
	}
	if kv, _, _ := agent.Client().KV().Get("mirrord/channels/production", nil); kv == nil || string(kv.Value) != s.id2 {
		t.Fatalf("KV mirrord/channels/production = %+v, want %s", kv, s.id2)
	}

	waitFor(t, "both replicas healthy in the catalog", 20*time.Second, func() bool { return len(healthyIDs(t, agent.Client(), s.service)) == 2 })
	t.Run("concurrent", func(t *testing.T) { testConsulConcurrent(t, s, a, b) })
	t.Run("client-config", func(t *testing.T) { testConsulClientConfig(t, s, a, b) })
	t.Run("templates", func(t *testing.T) { testConsulTemplates(t, s, a, b) })
}

// testConsulConcurrent: both replicas promote different snapshots to one
// channel at once; every promotion is in the history, each starting where
// the one before ended, and the pin is the last one.
func testConsulConcurrent(t *testing.T, s *consulSetup, a, b *replica) {
	before := len(channelOf(t, a.base, "production").History)
	const each = 8
	var wg sync.WaitGroup
	errs := make(chan string, 2*each)
	for i, r := range []*replica{a, b} {
		ids := []string{s.id1, s.id2}
		if i == 1 {
			ids = []string{s.id2, s.id1}
		}
		wg.Go(func() {
			for n := range each {
				code, body := apiPost(t, r.base+"/api/v1/channels/production/promote", `{"snapshot":"`+ids[n%2]+`"}`)
				if code != 200 {
					errs <- fmt.Sprintf("promote through %s: %d %s", r.id, code, body)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	// Read the history as stored (a replica's copy may lag by milliseconds).
	p, _, err := s.agent.Client().KV().Get(s.prefix+"channels/production/history", nil)
	if err != nil || p == nil {
		t.Fatalf("history key: %v", err)
	}
	ch, err := snapshot.DecodeChannel("production", p.Value)
	if err != nil {
		t.Fatal(err)
	}
	moves := ch.History[before:]
	if len(moves) != 2*each {
		t.Fatalf("%d promotions recorded, want %d", len(moves), 2*each)
	}
	for i := 1; i < len(ch.History); i++ {
		if ch.History[i].From != ch.History[i-1].Snapshot {
			t.Errorf("move %d starts from %s but the channel was at %s: a promotion was lost", i, ch.History[i].From, ch.History[i-1].Snapshot)
		}
	}
	last := moves[len(moves)-1].Snapshot
	if ch.Snapshot != last {
		t.Errorf("pin %s, last recorded move %s", ch.Snapshot, last)
	}
	want := s.body1
	if last == s.id2 {
		want = s.body2
	}
	for _, r := range []*replica{a, b} {
		servedWithin(t, r.base+"/channels/production/file/images/hello.txt", want, time.Now(), 5*time.Second)
	}
}

// testConsulClientConfig: a node with its own config (sources and consul:)
// gets client config for a healthy replica and the pinned snapshot.
func testConsulClientConfig(t *testing.T, s *consulSetup, a, b *replica) {
	pin := channelOf(t, a.base, "production").Snapshot
	want := s.body1
	if pin == s.id2 {
		want = s.body2
	}
	node := newEnv(t)
	node.writeConfig(fmt.Sprintf(`data_dir: data
consul: {address: %q}
file:
  - name: images
    files:
      - {url: %s/hello.txt, path: hello.txt, sha256: %s}
yum:
  - {name: baseos, url: "http://127.0.0.1:9/baseos/", insecure_skip_verify: true}
git:
  repos:
    - {name: stdlib, url: "https://git.invalid/puppetlabs/puppetlabs-stdlib"}
`, s.agent.Addr, s.up.URL, sha(want)))
	out := node.must("client-config", "--consul")
	fileURL := regexp.MustCompile(`http://127\.0\.0\.1:\d+/snapshots/` + pin + `/file/images/hello\.txt`).FindString(out)
	if fileURL == "" {
		t.Fatalf("client-config --consul: no file URL pinned to %s:\n%s", pin, out)
	}
	if resp, body := get(t, fileURL, nil); resp.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("GET %s: %d %q", fileURL, resp.StatusCode, body)
	}
	if !strings.Contains(out, "/snapshots/"+pin+"/yum/baseos/") {
		t.Errorf("no yum baseurl for the pin:\n%s", out)
	}
	if out := node.must("client-config", "--consul", "--snapshot", s.id1); !strings.Contains(out, "/snapshots/"+s.id1+"/file/images/hello.txt") {
		t.Errorf("--snapshot %s:\n%s", s.id1, out)
	}
	if r := node.run("client-config", "--consul", "--channel", "nope"); r.code != 3 || !strings.Contains(r.stderr, "mirrord/channels/nope") {
		t.Errorf("unknown channel: exit %d, %s", r.code, r.stderr)
	}

	root := t.TempDir()
	out = node.must("client-config", "--consul", "--write", "--root", root)
	repo, err := os.ReadFile(filepath.Join(root, "etc/yum.repos.d/mirrord-baseos.repo"))
	if err != nil || !regexp.MustCompile(`baseurl=http://127\.0\.0\.1:\d+/snapshots/`+pin+`/yum/baseos/`).Match(repo) {
		t.Fatalf("written .repo: %v\n%s\n%s", err, repo, out)
	}
	// Real git reads the insteadOf through the include --write added.
	git := exec.Command("git", "config", "--file", filepath.Join(root, "etc/gitconfig"), "--includes", "--get-regexp", `^url\..*\.insteadof$`)
	got, err := git.CombinedOutput()
	if err != nil || !strings.Contains(string(got), "/snapshots/"+pin+"/git/stdlib.git.insteadof https://git.invalid/puppetlabs/puppetlabs-stdlib") {
		t.Fatalf("git config via include: %v\n%s", err, got)
	}
	if again := node.must("client-config", "--consul", "--write", "--root", root); strings.Contains(again, "wrote") {
		t.Errorf("second --write rewrote files:\n%s", again)
	}
}

// testConsulTemplates renders examples/consul-template with real
// consul-template and reads the keys the way hiera-consul does.
func testConsulTemplates(t *testing.T, s *consulSetup, a, b *replica) {
	pin := channelOf(t, a.base, "production").Snapshot
	want := s.body1
	if pin == s.id2 {
		want = s.body2
	}
	examples, _ := filepath.Abs("../../examples/consul-template")
	t.Run("hiera-consul", func(t *testing.T) {
		paths := hieraPaths(t, filepath.Join(examples, "hiera.yaml"))
		if got := hieraLookup(t, s.agent, paths, "production"); got != pin {
			t.Errorf("hiera('production') = %q, want %s", got, pin)
		}
		var sum struct{ ID string }
		if err := json.Unmarshal([]byte(hieraLookup(t, s.agent, paths, pin)), &sum); err != nil || sum.ID != pin {
			t.Errorf("hiera('%s') summary: %+v %v", pin, sum, err)
		}
		port := hieraLookup(t, s.agent, paths, "mirrord_ServicePort")
		addr := hieraLookup(t, s.agent, paths, "mirrord_ServiceAddress")
		url := fmt.Sprintf("http://%s:%s/snapshots/%s/file/images/hello.txt", addr, port, pin)
		if resp, body := get(t, url, nil); resp.StatusCode != 200 || !bytes.Equal(body, want) {
			t.Errorf("GET %s built from hiera keys: %d %q", url, resp.StatusCode, body)
		}
	})
	t.Run("consul-template", func(t *testing.T) {
		bin := consultest.TemplateBin(t)
		dir := t.TempDir()
		sources, repo := filepath.Join(dir, "mirrord.sources"), filepath.Join(dir, "mirrord.repo")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-once", "-consul-addr", s.agent.Addr,
			"-template", filepath.Join(examples, "mirrord.sources.ctmpl")+":"+sources,
			"-template", filepath.Join(examples, "mirrord.repo.ctmpl")+":"+repo)
		cmd.Env = append(os.Environ(), "MIRRORD_CHANNEL=production", "MIRRORD_APT_SOURCE=debian")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("consul-template: %v\n%s", err, out)
		}
		src, _ := os.ReadFile(sources)
		uris := regexp.MustCompile(`(?m)^URIs:(.*)$`).FindStringSubmatch(string(src))
		var got []string
		if uris != nil {
			got = strings.Fields(uris[1])
		}
		wantURIs := []string{a.base + "/snapshots/" + pin + "/apt/debian/", b.base + "/snapshots/" + pin + "/apt/debian/"}
		sort.Strings(got)
		sort.Strings(wantURIs)
		if !slices.Equal(got, wantURIs) {
			t.Fatalf("rendered .sources URIs %v, want %v:\n%s", got, wantURIs, src)
		}
		rep, _ := os.ReadFile(repo)
		for _, r := range []*replica{a, b} {
			if !strings.Contains(string(rep), r.base+"/snapshots/"+pin+"/yum/baseos/") {
				t.Errorf("rendered .repo lacks %s:\n%s", r.base, rep)
			}
		}
		// The rendered URIs point at the pinned snapshot on live replicas.
		for _, u := range got {
			url := strings.TrimSuffix(u, "apt/debian/") + "file/images/hello.txt"
			if resp, body := get(t, url, nil); resp.StatusCode != 200 || !bytes.Equal(body, want) {
				t.Errorf("GET %s: %d %q", url, resp.StatusCode, body)
			}
		}
	})
}

// hieraPaths reads :consul: :paths: from a hiera.yaml.
func hieraPaths(t *testing.T, file string) []string {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	consulCfg, _ := cfg[":consul"].(map[string]any)
	list, _ := consulCfg[":paths"].([]any)
	var paths []string
	for _, p := range list {
		paths = append(paths, p.(string))
	}
	return paths
}

// hieraLookup answers key the way the hiera-consul backend does: for each
// path, "services" answers from the catalog (SERVICE_PROPERTY of the first
// instance), /v1/kv/... and /v1/catalog/... paths GET PATH/KEY and decode
// the first element's Value.
func hieraLookup(t *testing.T, agent *consultest.Agent, paths []string, key string) string {
	t.Helper()
	for _, p := range paths {
		if p == "services" {
			if v, ok := hieraServices(t, agent)[key]; ok {
				return v
			}
			continue
		}
		if !regexp.MustCompile(`^/v\d/(catalog|kv)/`).MatchString(p) {
			continue
		}
		resp, body := get(t, agent.URL()+p+"/"+key, nil)
		if resp.StatusCode != 200 {
			continue
		}
		var res []map[string]any
		if json.Unmarshal(body, &res) != nil || len(res) == 0 {
			continue
		}
		if v, ok := res[0]["Value"].(string); ok {
			dec, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				t.Fatal(err)
			}
			return string(dec)
		}
	}
	t.Fatalf("hiera lookup %q: not found in %v", key, paths)
	return ""
}

func hieraServices(t *testing.T, agent *consultest.Agent) map[string]string {
	out := map[string]string{}
	_, body := get(t, agent.URL()+"/v1/catalog/services", nil)
	var services map[string]any
	json.Unmarshal(body, &services)
	for name := range services {
		_, body := get(t, agent.URL()+"/v1/catalog/service/"+name, nil)
		var nodes []map[string]any
		json.Unmarshal(body, &nodes)
		for _, n := range nodes {
			for prop, v := range n {
				if _, ok := out[name+"_"+prop]; !ok {
					out[name+"_"+prop] = fmt.Sprint(v)
				}
			}
		}
	}
	return out
}

// testConsulLeader: of two replicas with a sync schedule, only the lock
// holder syncs; after it is killed, the other takes over and syncs.
func testConsulLeader(t *testing.T, agent *consultest.Agent) {
	s := &consulSetup{env: newEnv(t), agent: agent, prefix: "leader/", service: "mirrord-leader", up: newUpstream(t), interval: "2s"}
	os.WriteFile(filepath.Join(s.dir, "token"), []byte("s3cret\n"), 0o600)
	s.up.set("hello-"+sha([]byte("one\n"))[:8]+".txt", []byte("one\n"))
	s.writeConfig(s.yaml([]byte("one\n")))
	reps := []*replica{startReplica(t, s.env, s.service), startReplica(t, s.env, s.service)}
	kv := agent.Client().KV()
	holder := func() *replica {
		p, _, err := kv.Get(s.prefix+"leader", nil)
		if err != nil || p == nil || p.Session == "" {
			return nil
		}
		for _, r := range reps {
			if string(p.Value) == r.id {
				return r
			}
		}
		return nil
	}
	const done = "scheduled sync done"
	var leader *replica
	waitFor(t, "a leader that ran two scheduled syncs", 30*time.Second, func() bool {
		leader = holder()
		return leader != nil && leader.count(done) >= 2
	})
	other := reps[0]
	if other == leader {
		other = reps[1]
	}
	if n := other.count(done) + other.count("snapshot written"); n != 0 {
		t.Fatalf("the replica without the lock synced %d times:\n%s", n, other.out.String())
	}
	snaps := s.snapshotCount()
	leader.kill()
	killed := time.Now()
	// The upstream moves, so the new leader's sync writes a snapshot (an
	// unchanged one would write none).
	s.up.set("hello-"+sha([]byte("two\n"))[:8]+".txt", []byte("two\n"))
	s.writeConfig(s.yaml([]byte("two\n")))
	waitFor(t, "the other replica to take the lock and sync", 30*time.Second, func() bool {
		return holder() == other && other.count(done) >= 1
	})
	t.Logf("takeover: %s after kill -9 the other replica held the lock and had synced", time.Since(killed).Round(time.Millisecond))
	if after := s.snapshotCount(); after <= snaps {
		t.Errorf("no new snapshot after the takeover")
	}
}

func (s *consulSetup) snapshotCount() int {
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(s.must("snapshot", "list", "--json")), &list); err != nil {
		s.t.Fatal(err)
	}
	return len(list)
}

// TestConsulOutage: with the agent down, replicas keep serving and
// promotions fail clearly; when it is back, they re-register (with what
// changed meanwhile) and follow promotions again.
func TestConsulOutage(t *testing.T) {
	agent := consultest.Start(t, consultest.Options{Persistent: true})
	s := newConsulSetup(t, agent, "mirrord/", "mirrord")
	s.must("snapshot", "promote", s.id1, "production")
	a := startReplica(t, s.env, s.service)
	b := startReplica(t, s.env, s.service)
	c := agent.Client()
	waitFor(t, "both replicas registered", 20*time.Second, func() bool { return len(healthyIDs(t, c, s.service)) == 2 })
	chanPath := "/channels/production/file/images/hello.txt"

	agent.Stop()
	for _, r := range []*replica{a, b} {
		servedWithin(t, r.base+chanPath, s.body1, time.Now(), 5*time.Second)
		if resp, body := get(t, r.base+"/healthz", nil); resp.StatusCode != 200 {
			t.Errorf("%s /healthz with Consul down: %d %s", r.id, resp.StatusCode, body)
		}
	}
	res := s.run("snapshot", "promote", s.id2, "production")
	if res.code == 0 || !strings.Contains(res.stderr, "unreachable") || !strings.Contains(res.stderr, "not recorded") {
		t.Fatalf("CLI promote with Consul down: exit %d, stderr %q; want a failure saying it was not recorded", res.code, res.stderr)
	}
	t.Logf("CLI promote with Consul down: exit %d: %s", res.code, strings.TrimSpace(res.stderr))
	if code, body := apiPost(t, a.base+"/api/v1/channels/production/promote", `{"snapshot":"`+s.id2+`"}`); code < 500 || !strings.Contains(body, "not recorded") {
		t.Errorf("API promote with Consul down: %d %s", code, body)
	}
	id3 := s.sync() // a sync needs no Consul; the replicas advertise it when it is back
	for _, r := range []*replica{a, b} {
		servedWithin(t, r.base+chanPath, s.body1, time.Now(), 5*time.Second)
	}

	agent.Start()
	waitFor(t, "both replicas re-registered with the snapshot made during the outage", 30*time.Second, func() bool {
		ids := healthyIDs(t, c, s.service)
		return ids[a.id] == id3 && ids[b.id] == id3
	})
	waitFor(t, "the summary of that snapshot in KV", 10*time.Second, func() bool {
		p, _, err := c.KV().Get("mirrord/snapshots/"+id3, nil)
		return err == nil && p != nil
	})
	start := time.Now()
	s.must("snapshot", "promote", s.id2, "production")
	for _, r := range []*replica{a, b} {
		servedWithin(t, r.base+chanPath, s.body2, start, 10*time.Second)
	}
	if !strings.Contains(a.out.String(), "Consul reachable again") {
		t.Errorf("replica A did not log the reconnection")
	}
}
