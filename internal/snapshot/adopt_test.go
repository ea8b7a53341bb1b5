package snapshot_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// A record made by one catalog is adopted by another under its own ID,
// byte for byte, once its blobs are there; BlobsOf lists exactly those.
func TestAdoptAndBlobsOf(t *testing.T) {
	ctx := context.Background()
	a, b := newCatalog(t), newCatalog(t)
	src := source(t, a, "img", map[string]string{"x": "same", "y": "same", "z": "other"})
	rec, err := a.Commit(ctx, []snapshot.SourceRecord{src})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := a.BlobsOf(ctx, rec)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 3 || refs[0].Digest != src.Tree || refs[0].Ref != "file/img (tree)" || refs[1].Ref != "file/img/x" {
		t.Fatalf("BlobsOf: %+v; want the tree, then each distinct file once", refs)
	}
	raw, err := a.RawRecord(ctx, rec.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Adopt(ctx, raw); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Adopt without the blobs: %v, want not found", err)
	}
	for _, r := range refs {
		blob, err := a.Store().Blobs().Open(ctx, r.Digest)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Store().Blobs().Put(ctx, blob, store.Expect{Digest: r.Digest, Size: r.Size}); err != nil {
			t.Fatal(err)
		}
		blob.Close()
	}
	got, err := b.Adopt(ctx, raw)
	if err != nil || got.ID != rec.ID {
		t.Fatalf("Adopt: %v, %v", got, err)
	}
	if have, _ := b.RawRecord(ctx, rec.ID); !bytes.Equal(have, raw) {
		t.Error("the adopted record differs from the original bytes")
	}
	if _, err := b.Adopt(ctx, raw); !errors.Is(err, snapshot.ErrExists) {
		t.Errorf("second Adopt: %v, want ErrExists", err)
	}
	if _, err := b.Adopt(ctx, []byte(`{"id": "../x"}`)); !errors.Is(err, snapshot.ErrBadID) {
		t.Errorf("Adopt of a bad ID: %v", err)
	}
}
