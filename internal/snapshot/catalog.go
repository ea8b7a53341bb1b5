// Package snapshot keeps mirrord's immutable snapshots and its channels.
//
// Write order (see doc/design.md): blobs → trees and items (as blobs) →
// snapshot record (meta "snapshots/<ID>", created once, never modified) →
// channel pointer (meta "channels/<name>"). Deletion goes the other way:
// a channel must stop pointing at a snapshot before its record can go, and
// gc removes only blobs no remaining record references.
package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/mirrord/mirrord/internal/store"
)

const (
	snapshotsPrefix = "snapshots"
	channelsPrefix  = "channels"
	metaLock        = "meta"
)

var (
	// ErrNotFound: no such snapshot or channel.
	ErrNotFound = errors.New("not found")
	// ErrInUse: the snapshot is what a channel points at.
	ErrInUse = errors.New("in use by a channel")
	// ErrBadID: not a YYYYMMDDTHHMMSSZ snapshot ID.
	ErrBadID = errors.New("malformed snapshot ID")
	// ErrNoHistory: a rollback with nothing to go back to.
	ErrNoHistory = errors.New("no previous snapshot")
)

// Catalog reads and writes snapshot records and channels. Safe for
// concurrent use; mutations are serialised across processes by the store's
// "meta" lock.
type Catalog struct {
	st    store.Store
	now   func() time.Time
	chans ChannelStore

	mu    sync.Mutex
	recs  map[string]*Record // immutable once read
	trees map[store.Digest]*treeEntry
	tick  uint64
}

type treeEntry struct {
	t    *Tree
	used uint64
}

const maxCachedTrees = 64

// New returns a catalog over st.
func New(st store.Store) *Catalog {
	return &Catalog{st: st, now: time.Now, chans: metaChannels{st}, recs: map[string]*Record{}, trees: map[store.Digest]*treeEntry{}}
}

// SetClock replaces time.Now (tests).
func (c *Catalog) SetClock(now func() time.Time) { c.now = now }

// Store returns the underlying store.
func (c *Catalog) Store() store.Store { return c.st }

// IDs returns all snapshot IDs, oldest first.
func (c *Catalog) IDs(ctx context.Context) ([]string, error) {
	keys, err := c.st.Meta().List(ctx, snapshotsPrefix)
	if err != nil {
		return nil, fmt.Errorf("listing snapshots: %w", err)
	}
	ids := keys[:0]
	for _, k := range keys {
		if _, err := ParseID(k); err == nil {
			ids = append(ids, k)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Get returns the snapshot record with exactly this ID.
func (c *Catalog) Get(ctx context.Context, id string) (*Record, error) {
	if _, err := ParseID(id); err != nil {
		return nil, err
	}
	c.mu.Lock()
	r := c.recs[id]
	c.mu.Unlock()
	if r != nil {
		return r, nil
	}
	data, err := c.st.Meta().Get(ctx, snapshotsPrefix+"/"+id)
	if store.IsNotExist(err) {
		return nil, fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading snapshot %s: %w", id, err)
	}
	r = new(Record)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("snapshot %s: corrupt record: %w", id, err)
	}
	c.mu.Lock()
	c.recs[id] = r
	c.mu.Unlock()
	return r, nil
}

// Exists reports whether the record is still present (not deleted by
// another process), bypassing the cache.
func (c *Catalog) Exists(ctx context.Context, id string) (bool, error) {
	_, err := c.st.Meta().Get(ctx, snapshotsPrefix+"/"+id)
	if store.IsNotExist(err) {
		c.forget(id)
		return false, nil
	}
	return err == nil, err
}

func (c *Catalog) forget(id string) {
	c.mu.Lock()
	delete(c.recs, id)
	c.mu.Unlock()
}

// List returns all records, oldest first.
func (c *Catalog) List(ctx context.Context) ([]*Record, error) {
	ids, err := c.IDs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]*Record, 0, len(ids))
	for _, id := range ids {
		r, err := c.Get(ctx, id)
		if errors.Is(err, ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Latest returns the newest snapshot, or ErrNotFound when there is none.
func (c *Catalog) Latest(ctx context.Context) (*Record, error) {
	ids, err := c.IDs(ctx)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("no snapshots yet: %w", ErrNotFound)
	}
	return c.Get(ctx, ids[len(ids)-1])
}

// AtOrBefore returns the ID of the newest snapshot created at or before t.
func (c *Catalog) AtOrBefore(ctx context.Context, t time.Time) (string, error) {
	ids, err := c.IDs(ctx)
	if err != nil {
		return "", err
	}
	want := FormatID(t)
	i := sort.SearchStrings(ids, want)
	if i < len(ids) && ids[i] == want {
		return want, nil
	}
	if i == 0 {
		return "", fmt.Errorf("no snapshot at or before %s: %w", want, ErrNotFound)
	}
	return ids[i-1], nil
}

// Commit writes a new snapshot record naming sources, after checking that
// every tree, item list and file blob they reference is in the store. The ID
// is the current UTC second, moved forward while taken, so two snapshots
// made in one second still get distinct, ordered IDs.
func (c *Catalog) Commit(ctx context.Context, sources []SourceRecord) (*Record, error) {
	if err := c.checkBlobs(ctx, sources); err != nil {
		return nil, err
	}
	if s, ok := c.st.Blobs().(store.Syncer); ok {
		if err := s.Sync(ctx); err != nil {
			return nil, fmt.Errorf("making blobs durable before the snapshot record: %w", err)
		}
	}
	srcs := append([]SourceRecord(nil), sources...)
	sort.Slice(srcs, func(i, j int) bool { return srcs[i].Key() < srcs[j].Key() })
	now := c.now().UTC().Truncate(time.Second)
	if ids, err := c.IDs(ctx); err == nil && len(ids) > 0 {
		if last, err := ParseID(ids[len(ids)-1]); err == nil && !now.After(last) {
			now = last.Add(time.Second)
		}
	}
	for tries := 0; tries < 120; tries++ {
		rec := &Record{ID: FormatID(now), Created: c.now().UTC(), Sources: srcs}
		data, err := json.MarshalIndent(rec, "", "  ")
		if err != nil {
			return nil, err
		}
		err = c.st.Meta().Create(ctx, snapshotsPrefix+"/"+rec.ID, data)
		if err == nil {
			return rec, nil
		}
		if !errors.Is(err, store.ErrExists) {
			return nil, fmt.Errorf("writing snapshot record %s: %w", rec.ID, err)
		}
		now = now.Add(time.Second)
	}
	return nil, fmt.Errorf("could not allocate a snapshot ID near %s", FormatID(now))
}

func (c *Catalog) checkBlobs(ctx context.Context, sources []SourceRecord) error {
	for _, s := range sources {
		t, err := c.Tree(ctx, s.Tree)
		if err != nil {
			return fmt.Errorf("source %s: %w", s.Key(), err)
		}
		if s.Items != "" {
			if _, err := c.st.Blobs().Stat(ctx, s.Items); err != nil {
				return fmt.Errorf("source %s: items %s: %w", s.Key(), s.Items, err)
			}
		}
		for _, e := range t.Entries {
			if _, err := c.st.Blobs().Stat(ctx, e.Digest); err != nil {
				return fmt.Errorf("source %s: file %s (%s): %w", s.Key(), e.Path, e.Digest, err)
			}
		}
	}
	return nil
}

// Tree loads (and caches) a tree blob.
func (c *Catalog) Tree(ctx context.Context, d store.Digest) (*Tree, error) {
	c.mu.Lock()
	c.tick++
	if te := c.trees[d]; te != nil {
		te.used = c.tick
		c.mu.Unlock()
		return te.t, nil
	}
	c.mu.Unlock()
	b, err := c.st.Blobs().Open(ctx, d)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", d, err)
	}
	defer b.Close()
	t, err := DecodeTree(b)
	if err != nil {
		return nil, fmt.Errorf("tree %s: %w", d, err)
	}
	c.cacheTree(d, t)
	return t, nil
}

func (c *Catalog) cacheTree(d store.Digest, t *Tree) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.trees) >= maxCachedTrees {
		var oldest store.Digest
		var min uint64 = ^uint64(0)
		for k, v := range c.trees {
			if v.used < min {
				oldest, min = k, v.used
			}
		}
		delete(c.trees, oldest)
	}
	c.tick++
	c.trees[d] = &treeEntry{t: t, used: c.tick}
}

// Items returns a source's items, or its tree's files when it has none.
func (c *Catalog) Items(ctx context.Context, s *SourceRecord) ([]Item, error) {
	if s.Items == "" {
		t, err := c.Tree(ctx, s.Tree)
		if err != nil {
			return nil, err
		}
		items := make([]Item, len(t.Entries))
		for i, e := range t.Entries {
			items[i] = Item{Name: e.Path, Version: string(e.Digest)}
		}
		return items, nil
	}
	b, err := c.st.Blobs().Open(ctx, s.Items)
	if err != nil {
		return nil, fmt.Errorf("items of %s: %w", s.Key(), err)
	}
	defer b.Close()
	return DecodeItems(io.Reader(b))
}

// Delete removes a snapshot record. It is refused (ErrInUse) while a
// channel points at it. Its blobs stay until gc.
func (c *Catalog) Delete(ctx context.Context, id string) error {
	unlock, err := c.st.Lock(ctx, metaLock)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := c.Get(ctx, id); err != nil {
		return err
	}
	chans, err := c.Channels(ctx)
	if err != nil {
		return err
	}
	for _, ch := range chans {
		if ch.Snapshot == id {
			return fmt.Errorf("snapshot %s: channel %q points at it; promote another snapshot to %q first: %w", id, ch.Name, ch.Name, ErrInUse)
		}
	}
	if err := c.st.Meta().Delete(ctx, snapshotsPrefix+"/"+id); err != nil {
		return fmt.Errorf("deleting snapshot %s: %w", id, err)
	}
	c.forget(id)
	return nil
}

// lastSyncKey holds when the last successful sync ended, whether or not it
// wrote a new snapshot (an unchanged upstream set writes none).
const lastSyncKey = "syncs/last"

// LastSync is what NoteSync records.
type LastSync struct {
	Time      time.Time `json:"time"`
	Snapshot  string    `json:"snapshot"`
	Unchanged bool      `json:"unchanged,omitempty"`
}

// NoteSync records a successful sync that ended with snapshot id.
func (c *Catalog) NoteSync(ctx context.Context, id string, unchanged bool) error {
	data, err := json.Marshal(LastSync{Time: c.now().UTC(), Snapshot: id, Unchanged: unchanged})
	if err != nil {
		return err
	}
	return c.st.Meta().Put(ctx, lastSyncKey, data)
}

// LastSync returns the last successful sync by any process sharing the
// store: the NoteSync record, or else the latest snapshot's creation. The
// error wraps ErrNotFound when there was none.
func (c *Catalog) LastSync(ctx context.Context) (LastSync, error) {
	var ls LastSync
	data, err := c.st.Meta().Get(ctx, lastSyncKey)
	if err == nil && json.Unmarshal(data, &ls) == nil {
		return ls, nil
	}
	if err != nil && !store.IsNotExist(err) {
		return ls, err
	}
	rec, err := c.Latest(ctx)
	if err != nil {
		return ls, err
	}
	return LastSync{Time: rec.Created, Snapshot: rec.ID}, nil
}
