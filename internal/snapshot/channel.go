package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/mirrord/mirrord/internal/store"
)

// Channel is a mutable name pointing at a snapshot, with the log of every
// move. Promote pushes a snapshot; Rollback pops back to the one before.
type Channel struct {
	Name     string `json:"name"`
	Snapshot string `json:"snapshot"`
	History  []Move `json:"history"`
}

// Move is one change of a channel's pointer.
type Move struct {
	Action   string    `json:"action"` // "promote" or "rollback"
	Snapshot string    `json:"snapshot"`
	From     string    `json:"from,omitempty"`
	At       time.Time `json:"at"`
	// By says who moved it: "api from ADDR on HOST" for the JSON API, the
	// user and host for the CLI; "" when not recorded (older moves).
	By string `json:"by,omitempty"`
}

type actorKey struct{}

// WithActor returns ctx carrying who makes the channel moves done with it
// (recorded as Move.By).
func WithActor(ctx context.Context, by string) context.Context {
	return context.WithValue(ctx, actorKey{}, by)
}

func actor(ctx context.Context) string {
	s, _ := ctx.Value(actorKey{}).(string)
	return s
}

var channelName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ValidChannel checks a channel name.
func ValidChannel(name string) error {
	if !channelName.MatchString(name) {
		return fmt.Errorf("channel name %q: use lowercase letters, digits, '.', '_' and '-'", name)
	}
	return nil
}

// stack replays the history: promote pushes, rollback pops.
func (ch *Channel) stack() []string {
	var st []string
	for _, m := range ch.History {
		switch m.Action {
		case "promote":
			st = append(st, m.Snapshot)
		case "rollback":
			if len(st) > 0 {
				st = st[:len(st)-1]
			}
		}
	}
	return st
}

// Previous is what Rollback would move the channel to ("" if nothing).
func (ch *Channel) Previous() string {
	st := ch.stack()
	if len(st) < 2 {
		return ""
	}
	return st[len(st)-2]
}

// ChannelStore keeps channel pointers and their history. The default keeps
// them in the store's Meta under the "meta" lock; a Consul-backed one keeps
// them in Consul KV with check-and-set. Implementations are safe for
// concurrent use, also across processes and replicas.
type ChannelStore interface {
	// Get returns the channel; the error wraps ErrNotFound when absent.
	Get(ctx context.Context, name string) (*Channel, error)
	// List returns every channel, sorted by name.
	List(ctx context.Context) ([]*Channel, error)
	// Update applies fn to the channel (a new empty one when absent and
	// create is set) and stores the result atomically: a concurrent
	// update is never lost (lock, or check-and-set with retry, in which
	// case fn may run more than once).
	Update(ctx context.Context, name string, create bool, fn func(*Channel) error) (*Channel, error)
}

// SetChannels replaces where channels are kept.
func (c *Catalog) SetChannels(cs ChannelStore) { c.chans = cs }

// Channel returns one channel.
func (c *Catalog) Channel(ctx context.Context, name string) (*Channel, error) {
	if err := ValidChannel(name); err != nil {
		return nil, err
	}
	return c.chans.Get(ctx, name)
}

// Channels returns every channel, sorted by name.
func (c *Catalog) Channels(ctx context.Context) ([]*Channel, error) {
	return c.chans.List(ctx)
}

// Promote points channel at snapshot id (creating the channel if needed).
func (c *Catalog) Promote(ctx context.Context, channel, id string) (*Channel, error) {
	if _, err := c.Get(ctx, id); err != nil {
		return nil, err
	}
	return c.update(ctx, channel, true, func(ch *Channel) error {
		ch.History = append(ch.History, Move{Action: "promote", Snapshot: id, From: ch.Snapshot, At: c.now().UTC(), By: actor(ctx)})
		ch.Snapshot = id
		return nil
	})
}

// Rollback moves channel back to the snapshot it pointed at before the
// current one.
func (c *Catalog) Rollback(ctx context.Context, channel string) (*Channel, error) {
	return c.update(ctx, channel, false, func(ch *Channel) error {
		prev := ch.Previous()
		if prev == "" {
			return fmt.Errorf("channel %q: %w to roll back to", channel, ErrNoHistory)
		}
		if ok, err := c.Exists(ctx, prev); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("channel %q: previous snapshot %s was deleted; promote a snapshot instead: %w", channel, prev, ErrNotFound)
		}
		ch.History = append(ch.History, Move{Action: "rollback", Snapshot: prev, From: ch.Snapshot, At: c.now().UTC(), By: actor(ctx)})
		ch.Snapshot = prev
		return nil
	})
}

func (c *Catalog) update(ctx context.Context, name string, create bool, fn func(*Channel) error) (*Channel, error) {
	if err := ValidChannel(name); err != nil {
		return nil, err
	}
	return c.chans.Update(ctx, name, create, fn)
}

// metaChannels is the default ChannelStore: JSON values in the store's
// Meta ("channels/<name>"), mutations under the "meta" lock.
type metaChannels struct{ st store.Store }

func (m metaChannels) Get(ctx context.Context, name string) (*Channel, error) {
	data, err := m.st.Meta().Get(ctx, channelsPrefix+"/"+name)
	if store.IsNotExist(err) {
		return nil, fmt.Errorf("channel %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading channel %q: %w", name, err)
	}
	return DecodeChannel(name, data)
}

// DecodeChannel parses a channel's JSON form.
func DecodeChannel(name string, data []byte) (*Channel, error) {
	ch := new(Channel)
	if err := json.Unmarshal(data, ch); err != nil {
		return nil, fmt.Errorf("channel %q: corrupt record: %w", name, err)
	}
	return ch, nil
}

func (m metaChannels) List(ctx context.Context) ([]*Channel, error) {
	names, err := m.st.Meta().List(ctx, channelsPrefix)
	if err != nil {
		return nil, fmt.Errorf("listing channels: %w", err)
	}
	var out []*Channel
	for _, n := range names {
		if ValidChannel(n) != nil {
			continue
		}
		ch, err := m.Get(ctx, n)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, ch)
	}
	return out, nil
}

func (m metaChannels) Update(ctx context.Context, name string, create bool, fn func(*Channel) error) (*Channel, error) {
	unlock, err := m.st.Lock(ctx, metaLock)
	if err != nil {
		return nil, fmt.Errorf("locking channels: %w", err)
	}
	defer unlock()
	ch, err := m.Get(ctx, name)
	if errors.Is(err, ErrNotFound) && create {
		ch, err = &Channel{Name: name}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := fn(ch); err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(ch, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := m.st.Meta().Put(ctx, channelsPrefix+"/"+name, data); err != nil {
		return nil, fmt.Errorf("writing channel %q: %w", name, err)
	}
	return ch, nil
}

// ChannelsOf returns the names of channels currently pointing at id.
func ChannelsOf(chans []*Channel, id string) []string {
	var out []string
	for _, ch := range chans {
		if ch.Snapshot == id {
			out = append(out, ch.Name)
		}
	}
	return out
}

// DefaultChannel is the channel clients are pointed at when none is named.
const DefaultChannel = "production"

// Target is what a client-facing command points clients at.
type Target struct {
	Snapshot string // the snapshot served now
	Channel  string // the channel it was reached through, or "" for a pinned snapshot
	Why      string // which rule chose it, for messages
}

// TargetSource is where Pick looks: channel pointers and the latest
// snapshot (the catalog, or a replica's Consul KV).
type TargetSource struct {
	// Channel returns the snapshot channel points at; the error wraps
	// ErrNotFound when there is no such channel.
	Channel func(ctx context.Context, channel string) (string, error)
	// Latest returns the newest snapshot; ErrNotFound when there is none.
	Latest func(ctx context.Context) (string, error)
}

// Pick applies the one rule every client-facing command uses: the snapshot
// given, else the channel given, else DefaultChannel when it exists, else
// the latest snapshot. It does not check that a given snapshot exists.
func Pick(ctx context.Context, src TargetSource, channel, snap string) (Target, error) {
	switch {
	case snap != "":
		return Target{Snapshot: snap, Why: "snapshot given on the command line"}, nil
	case channel != "":
		id, err := src.Channel(ctx, channel)
		if err != nil {
			return Target{}, err
		}
		return Target{Snapshot: id, Channel: channel, Why: "channel " + channel}, nil
	}
	id, err := src.Channel(ctx, DefaultChannel)
	if err == nil {
		return Target{Snapshot: id, Channel: DefaultChannel, Why: "channel " + DefaultChannel}, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return Target{}, err
	}
	id, err = src.Latest(ctx)
	if err != nil {
		return Target{}, fmt.Errorf("no channel given, no %s channel, and %w; run mirrord sync first", DefaultChannel, err)
	}
	return Target{Snapshot: id, Why: "no " + DefaultChannel + " channel: the latest snapshot"}, nil
}

// Targets is the catalog as a TargetSource.
func (c *Catalog) Targets() TargetSource {
	return TargetSource{
		Channel: func(ctx context.Context, name string) (string, error) {
			ch, err := c.Channel(ctx, name)
			if err != nil {
				return "", err
			}
			return ch.Snapshot, nil
		},
		Latest: func(ctx context.Context) (string, error) {
			rec, err := c.Latest(ctx)
			if err != nil {
				return "", err
			}
			return rec.ID, nil
		},
	}
}

// Prefix is the URL path clients use for t under base:
// base/channels/C or base/snapshots/ID.
func (t Target) Prefix(base string) string {
	if t.Channel != "" {
		return base + "/channels/" + t.Channel
	}
	return base + "/snapshots/" + t.Snapshot
}
