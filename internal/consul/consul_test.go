package consul

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/mirrord/mirrord/internal/consul/consultest"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// TestAgent runs everything that needs Consul against one real agent (a
// one-node server that keeps its data across a restart, for the outage
// test, which runs last); each subtest uses its own KV prefix and service
// name.
func TestAgent(t *testing.T) {
	agent := consultest.Start(t, consultest.Options{Persistent: true})
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *consultest.Agent, string)
	}{
		{"channels", testChannels},
		{"concurrent", testConcurrent},
		{"watch", testWatch},
		{"pointer", testPointerByHand},
		{"corrupt", testCorrupt},
		{"leader", testLeader},
		{"register", testRegister},
		{"summaries", testSummaries},
		{"outage", testOutage},
		{"locks", testLocks},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, agent, tc.name+"/") })
	}
}

func newClient(t *testing.T, addr, prefix string) *Client {
	t.Helper()
	c, err := New(Options{Address: addr, Prefix: prefix, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func promote(id string) func(*snapshot.Channel) error {
	return func(ch *snapshot.Channel) error {
		ch.History = append(ch.History, snapshot.Move{Action: "promote", Snapshot: id, From: ch.Snapshot, At: time.Now().UTC()})
		ch.Snapshot = id
		return nil
	}
}

func rawGet(t *testing.T, kv *api.KV, key string) string {
	t.Helper()
	p, _, err := kv.Get(key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p == nil {
		return "<absent>"
	}
	return string(p.Value)
}

func testChannels(t *testing.T, agent *consultest.Agent, prefix string) {
	ctx := context.Background()
	c := newClient(t, agent.Addr, prefix)
	s := c.Channels(ChannelOptions{})
	if _, err := s.Get(ctx, "production"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("Get absent: %v, want ErrNotFound", err)
	}
	if _, err := s.Update(ctx, "production", false, promote("20260101T000000Z")); !errors.Is(err, snapshot.ErrNotFound) {
		t.Fatalf("Update absent without create: %v, want ErrNotFound", err)
	}
	for _, id := range []string{"20260101T000000Z", "20260102T000000Z"} {
		if _, err := s.Update(ctx, "production", true, promote(id)); err != nil {
			t.Fatal(err)
		}
	}
	kv := agent.Client().KV()
	if got := rawGet(t, kv, prefix+"channels/production"); got != "20260102T000000Z" {
		t.Errorf("pointer key = %q, want the plain snapshot ID", got)
	}
	hist, err := snapshot.DecodeChannel("production", []byte(rawGet(t, kv, prefix+"channels/production/history")))
	if err != nil || len(hist.History) != 2 || hist.Previous() != "20260101T000000Z" {
		t.Fatalf("history key: %+v, %v", hist, err)
	}
	ch, err := s.Get(ctx, "production")
	if err != nil || ch.Snapshot != "20260102T000000Z" || len(ch.History) != 2 {
		t.Fatalf("Get = %+v, %v", ch, err)
	}
	if _, err := s.Update(ctx, "staging", true, promote("20260101T000000Z")); err != nil {
		t.Fatal(err)
	}
	list, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ch := range list {
		names = append(names, ch.Name+"="+ch.Snapshot)
	}
	if want := []string{"production=20260102T000000Z", "staging=20260101T000000Z"}; !slices.Equal(names, want) {
		t.Errorf("List = %v, want %v", names, want)
	}
	boom := errors.New("refused by fn")
	if _, err := s.Update(ctx, "production", false, func(*snapshot.Channel) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("fn error: %v", err)
	}
	if got := rawGet(t, kv, prefix+"channels/production"); got != "20260102T000000Z" {
		t.Errorf("a failed fn changed the pointer to %q", got)
	}
}

// testConcurrent: two "replicas" (clients) promote to one channel at once;
// every promotion is recorded, in an order where each move starts from
// the previous one's snapshot, and the pointer is the last move's.
func testConcurrent(t *testing.T, agent *consultest.Agent, prefix string) {
	ctx := context.Background()
	stores := []*Channels{newClient(t, agent.Addr, prefix).Channels(ChannelOptions{}), newClient(t, agent.Addr, prefix).Channels(ChannelOptions{})}
	const perWorker, workers = 6, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				id := fmt.Sprintf("202601%02dT0000%02dZ", w+1, i)
				if _, err := stores[w%2].Update(ctx, "production", true, promote(id)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ch, err := stores[0].Get(ctx, "production")
	if err != nil {
		t.Fatal(err)
	}
	if len(ch.History) != perWorker*workers {
		t.Fatalf("history has %d moves, want %d: promotions were lost", len(ch.History), perWorker*workers)
	}
	seen := map[string]bool{}
	prev := ""
	for i, m := range ch.History {
		if m.From != prev {
			t.Errorf("move %d %s starts from %q, but the channel was at %q", i, m.Snapshot, m.From, prev)
		}
		seen[m.Snapshot] = true
		prev = m.Snapshot
	}
	if len(seen) != perWorker*workers || ch.Snapshot != prev {
		t.Errorf("%d distinct snapshots, pointer %s, last move %s", len(seen), ch.Snapshot, prev)
	}
}

// testWatch: a started store sees another writer's promotion through its
// blocking query, calls OnChange, and keeps answering from its copy (and
// its cache file) when Consul is unreachable.
func testWatch(t *testing.T, agent *consultest.Agent, prefix string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writer := newClient(t, agent.Addr, prefix).Channels(ChannelOptions{})
	if _, err := writer.Update(ctx, "production", true, promote("20260101T000000Z")); err != nil {
		t.Fatal(err)
	}
	changed := make(chan struct{}, 16)
	cache := filepath.Join(t.TempDir(), "channels.json")
	watcher := newClient(t, agent.Addr, prefix).Channels(ChannelOptions{CacheFile: cache, OnChange: func() { changed <- struct{}{} }})
	if err := watcher.Start(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := writer.Update(ctx, "production", true, promote("20260102T000000Z")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
		t.Logf("watch saw the promotion %s after the write began", time.Since(start))
	case <-time.After(10 * time.Second):
		t.Fatal("OnChange not called after a promotion")
	}
	if ch, err := watcher.Get(ctx, "production"); err != nil || ch.Snapshot != "20260102T000000Z" {
		t.Fatalf("watcher Get = %+v, %v", ch, err)
	}
	// Unreachable: a store on a dead address answers from the cache file;
	// updates fail with a clear error.
	dead := newClient(t, deadAddr(t), prefix)
	offline := dead.Channels(ChannelOptions{CacheFile: cache})
	if err := offline.Start(ctx); err != nil {
		t.Fatalf("Start with a cache file and no Consul: %v", err)
	}
	if ch, err := offline.Get(ctx, "production"); err != nil || ch.Snapshot != "20260102T000000Z" {
		t.Fatalf("offline Get = %+v, %v", ch, err)
	}
	if _, err := offline.Get(ctx, "nope"); !errors.Is(err, snapshot.ErrNotFound) {
		t.Errorf("offline Get of an unknown channel: %v, want ErrNotFound", err)
	}
	_, err := offline.Update(ctx, "production", true, promote("20260103T000000Z"))
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "unreachable") || !strings.Contains(err.Error(), "not recorded") {
		t.Fatalf("offline Update: %v, want an ErrUnavailable saying the change was not recorded", err)
	}
	t.Logf("offline promotion error: %v", err)
	if err := dead.Channels(ChannelOptions{}).Start(ctx); err == nil {
		t.Error("Start with neither Consul nor cache file: no error")
	}
}

func deadAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// testPointerByHand: `consul kv put PREFIX/channels/C ID` moves a channel;
// mirrord shows it as a promotion, so rollback returns to where it was.
func testPointerByHand(t *testing.T, agent *consultest.Agent, prefix string) {
	ctx := context.Background()
	s := newClient(t, agent.Addr, prefix).Channels(ChannelOptions{})
	kv := agent.Client().KV()
	if _, err := kv.Put(&api.KVPair{Key: prefix + "channels/production", Value: []byte("20260101T000000Z\n")}, nil); err != nil {
		t.Fatal(err)
	}
	ch, err := s.Get(ctx, "production")
	if err != nil || ch.Snapshot != "20260101T000000Z" {
		t.Fatalf("Get of a hand-made pointer: %+v, %v", ch, err)
	}
	s.Update(ctx, "production", false, promote("20260102T000000Z"))
	if _, err := kv.Put(&api.KVPair{Key: prefix + "channels/production", Value: []byte("20260103T000000Z")}, nil); err != nil {
		t.Fatal(err)
	}
	ch, err = s.Get(ctx, "production")
	if err != nil || ch.Snapshot != "20260103T000000Z" || ch.Previous() != "20260102T000000Z" {
		t.Fatalf("Get after a hand move: %+v, %v", ch, err)
	}
}

func testCorrupt(t *testing.T, agent *consultest.Agent, prefix string) {
	ctx := context.Background()
	s := newClient(t, agent.Addr, prefix).Channels(ChannelOptions{})
	kv := agent.Client().KV()
	kv.Put(&api.KVPair{Key: prefix + "channels/good", Value: []byte("20260101T000000Z")}, nil)
	kv.Put(&api.KVPair{Key: prefix + "channels/bad", Value: []byte("20260101T000000Z")}, nil)
	kv.Put(&api.KVPair{Key: prefix + "channels/bad/history", Value: []byte("{not json")}, nil)
	list, err := s.List(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "good" {
		t.Fatalf("List with a corrupt channel: %v, %v; want only the good one", list, err)
	}
	_, err = s.Update(ctx, "bad", true, promote("20260102T000000Z"))
	if err == nil || !strings.Contains(err.Error(), prefix+"channels/bad/history") {
		t.Fatalf("Update of a corrupt channel: %v, want an error naming the key", err)
	}
}

// testLeader: two replicas compete; one leads at a time; the other takes
// over when the leader stops, and when its session is destroyed.
func testLeader(t *testing.T, agent *consultest.Agent, prefix string) {
	var running atomic.Int32
	var mu sync.Mutex
	var leaders []string
	lead := func(ctx context.Context, id string) {
		c := newClient(t, agent.Addr, prefix)
		c.Lead(ctx, LeaderOptions{ID: id, Retry: 100 * time.Millisecond, LockDelay: time.Millisecond}, func(ctx context.Context) {
			if n := running.Add(1); n != 1 {
				t.Errorf("%d leaders at once", n)
			}
			mu.Lock()
			leaders = append(leaders, id)
			mu.Unlock()
			<-ctx.Done()
			running.Add(-1)
		})
	}
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	var wg sync.WaitGroup
	wg.Go(func() { lead(ctxA, "a") })
	wait(t, "a leader", func() bool { return running.Load() == 1 })
	time.Sleep(300 * time.Millisecond)
	wg.Go(func() { lead(ctxB, "b") })
	time.Sleep(500 * time.Millisecond)
	holder, held, err := newClient(t, agent.Addr, prefix).Holder(context.Background())
	if err != nil || !held || holder != "a" {
		t.Fatalf("Holder = %q %v %v, want a", holder, held, err)
	}
	stopA()
	wait(t, "b to take over", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Equal(leaders, []string{"a", "b"})
	})
	// Invalidate b's session by hand: b must stop, and lead again.
	pair, _, err := agent.Client().KV().Get(prefix+"leader", nil)
	if err != nil || pair == nil || pair.Session == "" {
		t.Fatalf("lock key: %+v %v", pair, err)
	}
	if _, err := agent.Client().Session().Destroy(pair.Session, nil); err != nil {
		t.Fatal(err)
	}
	wait(t, "b to lead again with a new session", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(leaders) == 3
	})
	stopB()
	wg.Wait()
	if _, held, _ := newClient(t, agent.Addr, prefix).Holder(context.Background()); held {
		t.Error("lock still held after every replica stopped")
	}
}

func wait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testRegister(t *testing.T, agent *consultest.Agent, prefix string) {
	health := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "ok") }))
	defer health.Close()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(health.URL, "http://"))
	var portN int
	fmt.Sscan(port, &portN)
	name := "mirrord-" + strings.TrimSuffix(prefix, "/")
	svc := Service{Name: name, ID: ServiceID(name, "host", portN), Address: "127.0.0.1", Port: portN,
		CheckURL: health.URL + "/healthz", CheckInterval: 200 * time.Millisecond, Meta: map[string]string{"version": "test"}}
	var mu sync.Mutex
	state := State{LatestSnapshot: "20260101T000000Z", Channels: map[string]string{"production": "20260101T000000Z"}}
	c := newClient(t, agent.Addr, prefix)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Register(ctx, svc, RegisterOptions{Every: 100 * time.Millisecond, State: func(context.Context) (State, error) {
			mu.Lock()
			defer mu.Unlock()
			return state, nil
		}})
	}()
	healthy := func(want func(Instance) bool) func() bool {
		return func() bool {
			insts, err := c.Healthy(context.Background(), name)
			return err == nil && len(insts) == 1 && want(insts[0])
		}
	}
	wait(t, "a healthy registration", healthy(func(i Instance) bool {
		return i.ID == svc.ID && i.Meta["latest_snapshot"] == "20260101T000000Z" && slices.Equal(i.Channels(), []string{"production"}) &&
			i.Meta["channel-production"] == "20260101T000000Z" && i.URL() == "http://127.0.0.1:"+port
	}))
	mu.Lock()
	state = State{LatestSnapshot: "20260102T000000Z", Channels: map[string]string{"staging": "20260101T000000Z", "production": "20260102T000000Z", "v1.2": "20260101T000000Z"}}
	mu.Unlock()
	wait(t, "the registration to follow the state", healthy(func(i Instance) bool {
		return i.Meta["latest_snapshot"] == "20260102T000000Z" && i.Meta["channel-production"] == "20260102T000000Z" &&
			slices.Equal(i.Tags, []string{"channel-production", "channel-staging", "channel-v1.2"})
	}))
	// The agent forgets the service (as a restarted -dev agent does).
	if err := agent.Client().Agent().ServiceDeregister(svc.ID); err != nil {
		t.Fatal(err)
	}
	wait(t, "re-registration", healthy(func(i Instance) bool { return i.ID == svc.ID }))
	cancel()
	<-done
	if insts, err := c.Healthy(context.Background(), name); err != nil || len(insts) != 0 {
		t.Errorf("after shutdown: %v, %v; want deregistered", insts, err)
	}
}

func testSummaries(t *testing.T, agent *consultest.Agent, prefix string) {
	ctx := context.Background()
	c := newClient(t, agent.Addr, prefix)
	rec := func(id string) *snapshot.Record {
		return &snapshot.Record{ID: id, Created: time.Now().UTC(), Sources: []snapshot.SourceRecord{{Kind: "file", Name: "images", Files: 2, Size: 10}}}
	}
	recs := []*snapshot.Record{rec("20260101T000000Z"), rec("20260102T000000Z")}
	if a, r, err := c.PublishSnapshots(ctx, recs); err != nil || a != 2 || r != 0 {
		t.Fatalf("first publish: +%d -%d %v", a, r, err)
	}
	if a, r, err := c.PublishSnapshots(ctx, recs); err != nil || a != 0 || r != 0 {
		t.Fatalf("second publish: +%d -%d %v; want nothing to do", a, r, err)
	}
	got := rawGet(t, agent.Client().KV(), prefix+"snapshots/20260102T000000Z")
	if !strings.Contains(got, `"source": "file/images"`) || !strings.Contains(got, `"id": "20260102T000000Z"`) {
		t.Errorf("summary = %s", got)
	}
	// A snapshot another replica made after our newest stays; a deleted one goes.
	agent.Client().KV().Put(&api.KVPair{Key: prefix + "snapshots/20260103T000000Z", Value: []byte("{}")}, nil)
	if a, r, err := c.PublishSnapshots(ctx, recs[1:]); err != nil || a != 0 || r != 1 {
		t.Fatalf("after a delete: +%d -%d %v; want -1", a, r, err)
	}
	keys, _, _ := agent.Client().KV().Keys(prefix+"snapshots/", "", nil)
	if want := []string{prefix + "snapshots/20260102T000000Z", prefix + "snapshots/20260103T000000Z"}; !slices.Equal(keys, want) {
		t.Errorf("keys = %v, want %v", keys, want)
	}
}

// testOutage: with the agent stopped, the leader stops leading and the
// watched channels keep answering; once it is back, leadership and the
// watch resume.
func testOutage(t *testing.T, agent *consultest.Agent, prefix string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	writer := newClient(t, agent.Addr, prefix).Channels(ChannelOptions{})
	if _, err := writer.Update(ctx, "production", true, promote("20260101T000000Z")); err != nil {
		t.Fatal(err)
	}
	watcher := newClient(t, agent.Addr, prefix).Channels(ChannelOptions{})
	if err := watcher.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var terms atomic.Int32
	lost := make(chan struct{}, 8)
	leader := newClient(t, agent.Addr, prefix)
	done := make(chan struct{})
	go func() {
		defer close(done)
		leader.Lead(ctx, LeaderOptions{ID: "a", Retry: 100 * time.Millisecond, LockDelay: time.Millisecond}, func(ctx context.Context) {
			terms.Add(1)
			<-ctx.Done()
			lost <- struct{}{}
		})
	}()
	wait(t, "a leader", func() bool { return terms.Load() == 1 })

	agent.Stop()
	select {
	case <-lost:
	case <-time.After(20 * time.Second):
		t.Fatal("the leader kept leading with Consul down")
	}
	if ch, err := watcher.Get(ctx, "production"); err != nil || ch.Snapshot != "20260101T000000Z" {
		t.Fatalf("Get with Consul down: %+v, %v", ch, err)
	}
	if _, err := writer.Update(ctx, "production", true, promote("20260102T000000Z")); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Update with Consul down: %v", err)
	}

	agent.Start()
	wait(t, "leading again after Consul came back", func() bool { return terms.Load() == 2 })
	if _, err := writer.Update(ctx, "production", true, promote("20260102T000000Z")); err != nil {
		t.Fatal(err)
	}
	wait(t, "the watch to follow again", func() bool {
		ch, err := watcher.Get(ctx, "production")
		return err == nil && ch.Snapshot == "20260102T000000Z"
	})
	cancel()
	<-done
}

func TestDecode(t *testing.T) {
	hist := func(ch snapshot.Channel) *api.KVPair {
		var b bytes.Buffer
		fmt.Fprintf(&b, `{"name":%q,"snapshot":%q,"history":[`, ch.Name, ch.Snapshot)
		for i, m := range ch.History {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"action":%q,"snapshot":%q,"from":%q}`, m.Action, m.Snapshot, m.From)
		}
		b.WriteString("]}")
		return &api.KVPair{Key: "h", Value: b.Bytes()}
	}
	ptr := func(id string) *api.KVPair { return &api.KVPair{Key: "p", Value: []byte(id)} }
	one := snapshot.Channel{Name: "x", Snapshot: "A", History: []snapshot.Move{{Action: "promote", Snapshot: "A"}}}
	for _, tc := range []struct {
		name      string
		ptr, hist *api.KVPair
		snap      string
		moves     int
		nilCh     bool
	}{
		{"neither", nil, nil, "", 0, true},
		{"pointer only", ptr("A"), nil, "A", 1, false},
		{"both agree", ptr("A"), hist(one), "A", 1, false},
		{"pointer moved by hand", ptr("B"), hist(one), "B", 2, false},
		{"pointer deleted", nil, hist(one), "", 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch, err := decode("x", tc.ptr, tc.hist)
			if err != nil {
				t.Fatal(err)
			}
			if tc.nilCh {
				if ch != nil {
					t.Fatalf("got %+v, want nil", ch)
				}
				return
			}
			if ch.Snapshot != tc.snap || len(ch.History) != tc.moves || ch.Name != "x" {
				t.Errorf("got %+v, want snapshot %q with %d moves", ch, tc.snap, tc.moves)
			}
		})
	}
}

func TestKeys(t *testing.T) {
	c, err := New(Options{Address: "127.0.0.1:1", Prefix: "ops/mirrord"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range [][2]string{
		{c.ChannelKey("production"), "ops/mirrord/channels/production"},
		{c.HistoryKey("production"), "ops/mirrord/channels/production/history"},
		{c.SnapshotKey("20260101T000000Z"), "ops/mirrord/snapshots/20260101T000000Z"},
		{c.LeaderKey(), "ops/mirrord/leader"},
		{ServiceID("mirrord", "web1", 8080), "mirrord-web1-8080"},
	} {
		if tc[0] != tc[1] {
			t.Errorf("got %q, want %q", tc[0], tc[1])
		}
	}
	if d, _ := New(Options{}); d.prefix != DefaultPrefix {
		t.Errorf("default prefix %q", d.prefix)
	}
}
