package snapshot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mirrord/mirrord/internal/store"
)

// ErrExists: a snapshot record with this ID is already present.
var ErrExists = errors.New("already exists")

// BlobRef is one blob a snapshot record needs, with the first place that
// names it ("KIND/NAME/PATH", or "KIND/NAME (tree)" and "(items)").
type BlobRef struct {
	Digest store.Digest
	Size   int64
	Ref    string
}

// BlobsOf lists every blob rec needs: each source's tree and item list and
// every file its tree names, each digest once, in source then tree order
// (so related files stay together). It is the set gc marks for rec.
func (c *Catalog) BlobsOf(ctx context.Context, rec *Record) ([]BlobRef, error) {
	seen := map[store.Digest]bool{}
	var out []BlobRef
	add := func(d store.Digest, size int64, ref string) {
		if !seen[d] {
			seen[d] = true
			out = append(out, BlobRef{Digest: d, Size: size, Ref: ref})
		}
	}
	for _, s := range rec.Sources {
		for _, meta := range []struct {
			d    store.Digest
			what string
		}{{s.Tree, "tree"}, {s.Items, "items"}} {
			if meta.d == "" || seen[meta.d] {
				continue
			}
			in, err := c.st.Blobs().Stat(ctx, meta.d)
			if err != nil {
				return nil, fmt.Errorf("snapshot %s, source %s: %s %s: %w", rec.ID, s.Key(), meta.what, meta.d, err)
			}
			add(meta.d, in.Size, s.Key()+" ("+meta.what+")")
		}
		t, err := c.Tree(ctx, s.Tree)
		if err != nil {
			return nil, fmt.Errorf("snapshot %s, source %s: %w", rec.ID, s.Key(), err)
		}
		for _, e := range t.Entries {
			add(e.Digest, e.Size, s.Key()+"/"+e.Path)
		}
	}
	return out, nil
}

// RawRecord returns the stored bytes of snapshot id's record, exactly as
// Commit or Adopt wrote them.
func (c *Catalog) RawRecord(ctx context.Context, id string) ([]byte, error) {
	if _, err := ParseID(id); err != nil {
		return nil, err
	}
	data, err := c.st.Meta().Get(ctx, snapshotsPrefix+"/"+id)
	if store.IsNotExist(err) {
		return nil, fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading snapshot %s: %w", id, err)
	}
	return data, nil
}

// ParseRecord decodes a record's stored bytes and checks its ID.
func ParseRecord(data []byte) (*Record, error) {
	r := new(Record)
	if err := json.Unmarshal(data, r); err != nil {
		return nil, fmt.Errorf("corrupt snapshot record: %w", err)
	}
	if _, err := ParseID(r.ID); err != nil {
		return nil, err
	}
	for _, s := range r.Sources {
		if _, err := store.ParseDigest(string(s.Tree)); err != nil {
			return nil, fmt.Errorf("snapshot %s, source %s: tree: %w", r.ID, s.Key(), err)
		}
		if s.Items != "" {
			if _, err := store.ParseDigest(string(s.Items)); err != nil {
				return nil, fmt.Errorf("snapshot %s, source %s: items: %w", r.ID, s.Key(), err)
			}
		}
	}
	return r, nil
}

// Adopt commits a record made by another mirrord (an imported bundle)
// under its own ID, byte for byte. Like Commit it first checks that every
// blob the record needs is present and makes the blobs durable; the
// record then appears at once or not at all. A record with that ID
// already present is refused with ErrExists (whatever its content).
func (c *Catalog) Adopt(ctx context.Context, data []byte) (*Record, error) {
	rec, err := ParseRecord(data)
	if err != nil {
		return nil, err
	}
	if err := c.checkBlobs(ctx, rec.Sources); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", rec.ID, err)
	}
	if s, ok := c.st.Blobs().(store.Syncer); ok {
		if err := s.Sync(ctx); err != nil {
			return nil, fmt.Errorf("making blobs durable before the snapshot record: %w", err)
		}
	}
	err = c.st.Meta().Create(ctx, snapshotsPrefix+"/"+rec.ID, data)
	if errors.Is(err, store.ErrExists) {
		return nil, fmt.Errorf("snapshot %s: %w", rec.ID, ErrExists)
	}
	if err != nil {
		return nil, fmt.Errorf("writing snapshot record %s: %w", rec.ID, err)
	}
	c.forget(rec.ID)
	return rec, nil
}
