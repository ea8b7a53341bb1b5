package consul

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/mirrord/mirrord/internal/ctxtime"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// maxAttempts bounds the check-and-set retries of one channel update.
const maxAttempts = 50

// Channels keeps mirrord's channels in Consul KV; it implements
// snapshot.ChannelStore.
//
// Until Start is called every read goes to Consul (the CLI). After Start,
// reads are answered from an in-memory copy that blocking queries keep
// current, so a replica serves a promotion made anywhere within
// milliseconds; when Consul is unreachable the last copy known keeps
// answering, and with a cache file it survives a restart too. Updates
// always go to Consul and fail with an error wrapping ErrUnavailable
// while it is down. Safe for concurrent use.
type Channels struct {
	c         *Client
	cacheFile string
	onChange  func()

	mu      sync.RWMutex
	known   map[string]entry // nil until loaded
	fromKV  bool             // known came from Consul, not the cache file
	started bool
}

// entry is one channel as known, with the KV index of its last change.
type entry struct {
	ch  *snapshot.Channel
	idx uint64
}

// ChannelOptions configures Channels.
type ChannelOptions struct {
	// CacheFile, when set, keeps the last copy read from Consul on disk;
	// Start falls back to it when Consul is unreachable.
	CacheFile string
	// OnChange is called (from the watch goroutine) after the copy changed.
	OnChange func()
}

// Channels returns the KV-backed channel store.
func (c *Client) Channels(opt ChannelOptions) *Channels {
	return &Channels{c: c, cacheFile: opt.CacheFile, onChange: opt.OnChange}
}

var _ snapshot.ChannelStore = (*Channels)(nil)

// Get implements snapshot.ChannelStore.
func (s *Channels) Get(ctx context.Context, name string) (*snapshot.Channel, error) {
	s.mu.RLock()
	e, ok := s.known[name]
	loaded := s.known != nil
	s.mu.RUnlock()
	if ok {
		return clone(e.ch), nil
	}
	// A miss may be a channel created a moment ago: ask Consul.
	cur, err := s.read(ctx, name)
	if err != nil {
		if loaded && errors.Is(err, ErrUnavailable) {
			return nil, fmt.Errorf("channel %q: %w (Consul is unreachable; answering from the last copy known)", name, snapshot.ErrNotFound)
		}
		return nil, err
	}
	if cur.ch == nil || !cur.hasPtr {
		return nil, fmt.Errorf("channel %q: %w", name, snapshot.ErrNotFound)
	}
	return cur.ch, nil
}

// List implements snapshot.ChannelStore.
func (s *Channels) List(ctx context.Context) ([]*snapshot.Channel, error) {
	s.mu.RLock()
	known := s.known
	var out []*snapshot.Channel
	for _, e := range known {
		out = append(out, clone(e.ch))
	}
	s.mu.RUnlock()
	if known == nil {
		m, _, err := s.readAll(ctx, 0)
		if err != nil {
			return nil, err
		}
		for _, e := range m {
			out = append(out, e.ch)
		}
	}
	slices.SortFunc(out, func(a, b *snapshot.Channel) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Update implements snapshot.ChannelStore: the pointer and the history are
// written in one transaction, check-and-set on both; a lost race re-reads
// and runs fn again.
func (s *Channels) Update(ctx context.Context, name string, create bool, fn func(*snapshot.Channel) error) (*snapshot.Channel, error) {
	for attempt := 1; ; attempt++ {
		cur, err := s.read(ctx, name)
		if err != nil {
			return nil, s.changeErr(name, err)
		}
		ch := cur.ch
		switch {
		case ch == nil && !create, ch != nil && !cur.hasPtr && !create:
			return nil, fmt.Errorf("channel %q: %w", name, snapshot.ErrNotFound)
		case ch == nil:
			ch = &snapshot.Channel{Name: name}
		}
		if err := fn(ch); err != nil {
			return nil, err
		}
		idx, ok, err := s.commit(ctx, name, ch, cur)
		if err != nil {
			return nil, s.changeErr(name, err)
		}
		if ok {
			s.remember(name, ch, idx)
			return clone(ch), nil
		}
		if attempt == maxAttempts {
			return nil, fmt.Errorf("channel %q: gave up after %d attempts lost to concurrent changes; try again", name, attempt)
		}
		if err := ctxtime.Sleep(ctx, time.Duration(rand.IntN(20*min(attempt, 5))+1)*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// changeErr says that a promotion or rollback was not made, and why.
func (s *Channels) changeErr(name string, err error) error {
	what := fmt.Sprintf("promotion/rollback of channel %q not recorded; retry when Consul is back", name)
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return &UnavailableError{Addr: ue.Addr, What: what, Err: ue.Err}
	}
	if unreachable(err) {
		return &UnavailableError{Addr: s.c.addr, What: what, Err: err}
	}
	return fmt.Errorf("channel %q: %w", name, err)
}

// current is a channel as read for an update, with the KV indexes the
// check-and-set needs (0: key absent).
type current struct {
	ch                 *snapshot.Channel // nil when neither key exists
	hasPtr             bool
	ptrIdx, historyIdx uint64
}

// read fetches pointer and history of one channel in one consistent
// read-only transaction.
func (s *Channels) read(ctx context.Context, name string) (current, error) {
	ptrKey, histKey := s.c.ChannelKey(name), s.c.HistoryKey(name)
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: ptrKey}},
		{KV: &api.KVTxnOp{Verb: api.KVGetOrEmpty, Key: histKey}},
	}
	type txnResult struct {
		ok   bool
		resp *api.TxnResponse
	}
	r, err := call(ctx, func(ctx context.Context) (txnResult, error) {
		ok, resp, _, err := s.c.api.Txn().Txn(ops, query(ctx))
		return txnResult{ok, resp}, err
	})
	if err != nil {
		return current{}, s.c.wrap(err, "reading channel "+name)
	}
	if !r.ok {
		return current{}, fmt.Errorf("consul at %s: reading channel %s: %s", s.c.addr, name, txnErrors(r.resp))
	}
	var ptr, hist *api.KVPair
	for _, res := range r.resp.Results {
		if res.KV == nil || res.KV.ModifyIndex == 0 {
			continue
		}
		switch res.KV.Key {
		case ptrKey:
			ptr = res.KV
		case histKey:
			hist = res.KV
		}
	}
	cur := current{hasPtr: ptr != nil}
	if ptr != nil {
		cur.ptrIdx = ptr.ModifyIndex
	}
	if hist != nil {
		cur.historyIdx = hist.ModifyIndex
	}
	ch, err := decode(name, ptr, hist)
	if err != nil {
		return current{}, err
	}
	cur.ch = ch
	return cur, nil
}

// commit writes ch if neither key changed since cur was read. It returns
// the index of the write, and false when another writer came first.
func (s *Channels) commit(ctx context.Context, name string, ch *snapshot.Channel, cur current) (uint64, bool, error) {
	data, err := json.MarshalIndent(ch, "", "  ")
	if err != nil {
		return 0, false, err
	}
	ops := api.TxnOps{
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: s.c.HistoryKey(name), Value: data, Index: cur.historyIdx}},
		{KV: &api.KVTxnOp{Verb: api.KVCAS, Key: s.c.ChannelKey(name), Value: []byte(ch.Snapshot), Index: cur.ptrIdx}},
	}
	type txnResult struct {
		ok   bool
		resp *api.TxnResponse
	}
	r, err := call(ctx, func(ctx context.Context) (txnResult, error) {
		ok, resp, _, err := s.c.api.Txn().Txn(ops, query(ctx))
		return txnResult{ok, resp}, err
	})
	if err != nil {
		return 0, false, s.c.wrap(err, "writing channel "+name)
	}
	if r.ok {
		var idx uint64
		for _, res := range r.resp.Results {
			if res.KV != nil {
				idx = max(idx, res.KV.ModifyIndex)
			}
		}
		return idx, true, nil
	}
	for _, e := range r.resp.Errors {
		if !strings.Contains(e.What, "index is stale") {
			return 0, false, fmt.Errorf("consul at %s refused the write of channel %s: %s", s.c.addr, name, txnErrors(r.resp))
		}
	}
	return 0, false, nil
}

func txnErrors(resp *api.TxnResponse) string {
	if resp == nil || len(resp.Errors) == 0 {
		return "transaction rolled back"
	}
	var msgs []string
	for _, e := range resp.Errors {
		msgs = append(msgs, e.What)
	}
	return strings.Join(msgs, "; ")
}

// decode builds a channel from its pointer and history keys (either may be
// nil). The pointer is what clients read, so it wins: a pointer moved by
// hand (consul kv put) shows as a promotion in the history, and a history
// without pointer is a channel someone deleted (returned with Snapshot "",
// so a new promotion keeps the old history).
func decode(name string, ptr, hist *api.KVPair) (*snapshot.Channel, error) {
	if ptr == nil && hist == nil {
		return nil, nil
	}
	ch := &snapshot.Channel{Name: name}
	if hist != nil {
		h, err := snapshot.DecodeChannel(name, hist.Value)
		if err != nil {
			return nil, fmt.Errorf("consul key %s: %w (delete the key to start the channel's history afresh)", hist.Key, err)
		}
		ch = h
		ch.Name = name
	}
	if ptr == nil {
		ch.Snapshot = ""
		return ch, nil
	}
	id := strings.TrimSpace(string(ptr.Value))
	if id != ch.Snapshot {
		ch.History = append(ch.History, snapshot.Move{Action: "promote", Snapshot: id, From: ch.Snapshot})
		ch.Snapshot = id
	}
	return ch, nil
}

// readAll lists every channel (those with a pointer), blocking until the
// KV index passes waitIndex when it is not 0.
func (s *Channels) readAll(ctx context.Context, waitIndex uint64) (map[string]entry, uint64, error) {
	q := &api.QueryOptions{}
	timeout := requestTimeout
	if waitIndex > 0 {
		q.WaitIndex, q.WaitTime = waitIndex, watchWait
		timeout += watchWait + watchWait/16
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pairs, meta, err := s.c.api.KV().List(s.c.channelsPrefix(), q.WithContext(ctx))
	if err != nil {
		return nil, 0, s.c.wrap(err, "listing channels")
	}
	return s.parse(pairs), meta.LastIndex, nil
}

// parse groups the keys under channels/ by channel. Corrupt or foreign
// keys are logged and skipped.
func (s *Channels) parse(pairs api.KVPairs) map[string]entry {
	ptrs, hists := map[string]*api.KVPair{}, map[string]*api.KVPair{}
	for _, p := range pairs {
		rest := strings.TrimPrefix(p.Key, s.c.channelsPrefix())
		name, sub, _ := strings.Cut(rest, "/")
		if snapshot.ValidChannel(name) != nil {
			continue
		}
		switch sub {
		case "":
			ptrs[name] = p
		case "history":
			hists[name] = p
		}
	}
	out := make(map[string]entry, len(ptrs))
	for name, p := range ptrs {
		ch, err := decode(name, p, hists[name])
		if err != nil {
			s.c.log.Warn("skipping a corrupt channel in Consul KV", "channel", name, "err", err)
			continue
		}
		idx := p.ModifyIndex
		if h := hists[name]; h != nil {
			idx = max(idx, h.ModifyIndex)
		}
		out[name] = entry{ch: ch, idx: idx}
	}
	return out
}

// remember puts a channel just written into the copy (the watch may not
// have seen it yet).
func (s *Channels) remember(name string, ch *snapshot.Channel, idx uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.known == nil {
		return
	}
	if e, ok := s.known[name]; ok && e.idx > idx {
		return
	}
	m := maps.Clone(s.known) // installed maps are never modified: readers use them unlocked
	m[name] = entry{ch: clone(ch), idx: idx}
	s.known = m
}

func clone(ch *snapshot.Channel) *snapshot.Channel {
	c := *ch
	c.History = slices.Clone(ch.History)
	return &c
}
