package consul

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/mirrord/mirrord/internal/atomicfile"
	"github.com/mirrord/mirrord/internal/ctxtime"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// watchWait is how long one blocking query waits for a change.
const watchWait = 5 * time.Minute

// Start loads the channels once (from Consul, or from the cache file when
// Consul is unreachable) and then keeps the copy current with blocking
// queries until ctx ends. It returns once the first load is done; an error
// means neither Consul nor the cache file answered (the watch still runs
// and reads fall through to Consul meanwhile).
func (s *Channels) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("consul channels: Start called twice")
	}
	s.started = true
	s.mu.Unlock()
	m, idx, err := s.readAll(ctx, 0)
	if err == nil {
		s.replace(m, idx, true)
	} else if cerr := s.loadCache(); cerr != nil {
		err = fmt.Errorf("%w; no cached copy either: %w", err, cerr)
	} else {
		s.c.log.Warn("Consul unreachable at start: serving the channels cached in "+s.cacheFile, "err", err)
		err, idx = nil, 0
	}
	go s.watch(ctx, idx)
	return err
}

// watch follows the channels/ prefix with blocking queries.
func (s *Channels) watch(ctx context.Context, idx uint64) {
	failing, backoff := false, 250*time.Millisecond
	for ctx.Err() == nil {
		m, last, err := s.readAll(ctx, max(idx, 1))
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if !failing {
				s.c.log.Warn("Consul unreachable: serving the last channels known; promotions fail until it is back", "err", err)
			}
			failing, idx = true, 0
			ctxtime.Sleep(ctx, backoff)
			backoff = min(backoff*2, 2*time.Second)
			continue
		}
		if failing {
			s.c.log.Info("Consul reachable again: following channel changes")
		}
		failing, backoff = false, 250*time.Millisecond
		if last < idx {
			idx = 0 // the index went backwards (Consul restored or rebuilt): start over
			continue
		}
		if s.replace(m, last, true) {
			s.c.log.Debug("channels changed in Consul", "index", last)
			if s.onChange != nil {
				s.onChange()
			}
		}
		idx = last
	}
}

// replace installs a fresh copy read at KV index idx, keeping channels
// this process wrote after idx. It reports whether anything changed.
// m becomes the copy and must not be modified afterwards.
func (s *Channels) replace(m map[string]entry, idx uint64, fromKV bool) bool {
	s.mu.Lock()
	for name, e := range s.known {
		if e.idx > idx {
			if n, ok := m[name]; !ok || n.idx < e.idx {
				m[name] = e
			}
		}
	}
	changed := !sameChannels(s.known, m) || s.known == nil
	s.known, s.fromKV = m, fromKV
	s.mu.Unlock()
	if changed && fromKV {
		s.saveCache(m)
	}
	return changed
}

func sameChannels(a, b map[string]entry) bool {
	if len(a) != len(b) {
		return false
	}
	for name, x := range a {
		y, ok := b[name]
		if !ok || x.ch.Snapshot != y.ch.Snapshot || len(x.ch.History) != len(y.ch.History) {
			return false
		}
	}
	return true
}

// saveCache writes the copy to the cache file (best effort: a failure is
// logged, serving goes on).
func (s *Channels) saveCache(m map[string]entry) {
	if s.cacheFile == "" {
		return
	}
	list := make([]*snapshot.Channel, 0, len(m))
	for _, e := range m {
		list = append(list, e.ch)
	}
	slices.SortFunc(list, func(a, b *snapshot.Channel) int { return strings.Compare(a.Name, b.Name) })
	data, err := json.MarshalIndent(list, "", "  ")
	if err == nil {
		err = atomicfile.Write(s.cacheFile, data, 0o644, nil)
	}
	if err != nil {
		s.c.log.Warn("could not save the channel cache", "file", s.cacheFile, "err", err)
	}
}

func (s *Channels) loadCache() error {
	if s.cacheFile == "" {
		return errors.New("no cache file configured")
	}
	data, err := os.ReadFile(s.cacheFile)
	if err != nil {
		return err
	}
	var list []*snapshot.Channel
	if err := json.Unmarshal(data, &list); err != nil {
		return fmt.Errorf("%s: corrupt channel cache: %w", s.cacheFile, err)
	}
	m := make(map[string]entry, len(list))
	for _, ch := range list {
		if snapshot.ValidChannel(ch.Name) == nil {
			m[ch.Name] = entry{ch: ch}
		}
	}
	s.replace(m, 0, false)
	return nil
}
