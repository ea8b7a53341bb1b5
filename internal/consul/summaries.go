package consul

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/mirrord/mirrord/internal/snapshot"
)

// Summary is the JSON value of PREFIX/snapshots/<ID>: what a node or a
// puppet run needs to know about a snapshot without asking mirrord.
type Summary struct {
	ID      string          `json:"id"`
	Created time.Time       `json:"created"`
	Size    int64           `json:"size"`
	Sources []SourceSummary `json:"sources"`
}

// SourceSummary is one source of a Summary.
type SourceSummary struct {
	Source   string    `json:"source"` // KIND/NAME
	Upstream string    `json:"upstream,omitempty"`
	Files    int       `json:"files"`
	Size     int64     `json:"size"`
	Items    int       `json:"items,omitempty"`
	Synced   time.Time `json:"synced"`
}

// Summarize returns rec's summary.
func Summarize(rec *snapshot.Record) Summary {
	s := Summary{ID: rec.ID, Created: rec.Created, Size: rec.Size(), Sources: []SourceSummary{}}
	for _, src := range rec.Sources {
		s.Sources = append(s.Sources, SourceSummary{
			Source: src.Key(), Upstream: src.Upstream, Files: src.Files, Size: src.Size, Items: src.NItems, Synced: src.Synced,
		})
	}
	return s
}

// PublishSnapshots makes PREFIX/snapshots/ match recs (all snapshots, oldest
// first): summaries missing there are written (create-only, so replicas
// doing the same at once do not conflict), and those of deleted snapshots
// older than the newest of recs are removed (a newer one is a snapshot this
// replica has not seen yet). It returns how many keys it added and removed.
func (c *Client) PublishSnapshots(ctx context.Context, recs []*snapshot.Record) (added, removed int, err error) {
	keys, err := call(ctx, func(ctx context.Context) ([]string, error) {
		k, _, err := c.api.KV().Keys(c.snapshotsPrefix(), "/", query(ctx))
		return k, err
	})
	if err != nil {
		return 0, 0, c.wrap(err, "listing snapshot summaries")
	}
	have := map[string]bool{}
	for _, k := range keys {
		have[strings.TrimPrefix(k, c.snapshotsPrefix())] = true
	}
	want := map[string]bool{}
	for _, rec := range recs {
		want[rec.ID] = true
		if have[rec.ID] {
			continue
		}
		if err := c.putSummary(ctx, rec); err != nil {
			return added, removed, err
		}
		added++
	}
	if len(recs) == 0 {
		return added, removed, nil
	}
	newest := recs[len(recs)-1].ID
	for id := range have {
		if want[id] || id > newest {
			continue
		}
		if _, err := snapshot.ParseID(id); err != nil {
			continue // not ours
		}
		if _, err := call(ctx, func(ctx context.Context) (*api.WriteMeta, error) {
			return c.api.KV().Delete(c.SnapshotKey(id), write(ctx))
		}); err != nil {
			return added, removed, c.wrap(err, "deleting the summary of deleted snapshot "+id)
		}
		removed++
	}
	return added, removed, nil
}

func (c *Client) putSummary(ctx context.Context, rec *snapshot.Record) error {
	data, err := json.MarshalIndent(Summarize(rec), "", "  ")
	if err != nil {
		return err
	}
	_, err = call(ctx, func(ctx context.Context) (bool, error) {
		ok, _, err := c.api.KV().CAS(&api.KVPair{Key: c.SnapshotKey(rec.ID), Value: data}, write(ctx))
		return ok, err
	})
	return c.wrap(err, "writing the summary of snapshot "+rec.ID)
}
