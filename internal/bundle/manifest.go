// Package bundle writes and reads mirrord's air-gap bundles: one snapshot
// record with every blob it needs that a base snapshot does not have,
// signed, so that a mirrord with no network path to the exporter can take
// the snapshot over under the same ID.
//
// A bundle is a zstd-compressed tar stream (any zstd and tar read it):
//
//	manifest.json           what follows: every entry's name, sha256 and size
//	manifest.json.asc       OpenPGP detached signature of manifest.json
//	snapshots/<ID>.json     the snapshot record, byte for byte as stored
//	blobs/sha256/<digest>   each blob: trees, item lists, files (git packs
//	...                     included, as the trees name them)
//
// Entries appear in exactly the manifest's order. A reader verifies the
// signature before it looks at anything else, then each entry's name, size
// and digest while it streams; anything the manifest does not list, or a
// stream that ends early, is an error. Split bundles are that stream cut
// into parts FILE.000, FILE.001, ... of the manifest's part_size bytes
// (the last may be shorter): `cat FILE.* | zstd -d | tar t` lists one.
package bundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// Format is the manifest's format tag; readers refuse any other.
const Format = "mirrord-bundle/1"

// Entry names inside the tar stream.
const (
	manifestName  = "manifest.json"
	signatureName = "manifest.json.asc"
	recordsDir    = "snapshots/"
	blobsDir      = "blobs/sha256/"
)

// Limits on the entries read into memory.
const (
	maxManifest  = 256 << 20 // ~1.5 million blobs
	maxSignature = 64 << 10
	maxRecord    = 64 << 20
)

var (
	// ErrCorrupt: the bundle's content does not match its signed
	// manifest, or the stream is malformed or incomplete.
	ErrCorrupt = errors.New("corrupt bundle")
	// ErrSignature: the manifest's signature is missing, bad, or by a
	// key the keyring does not hold.
	ErrSignature = errors.New("manifest signature not accepted")
	// ErrMissingBase: an incremental bundle whose base snapshot the
	// store does not have.
	ErrMissingBase = errors.New("base snapshot missing")
	// ErrConflict: the store has a different snapshot under the
	// bundle's ID.
	ErrConflict = errors.New("a different snapshot has this ID")
)

// Manifest describes a bundle. It is what the exporter signs.
type Manifest struct {
	Format   string    `json:"format"`
	Snapshot string    `json:"snapshot"`
	Base     string    `json:"base,omitempty"` // incremental: the importer must have this snapshot
	Created  time.Time `json:"created"`
	Signer   string    `json:"signer"`              // fingerprint of the signing key
	PartSize int64     `json:"part_size,omitempty"` // split bundles: bytes per part
	Records  []Item    `json:"records"`
	Blobs    []Item    `json:"blobs"`
	Bytes    int64     `json:"blob_bytes"` // sum of Blobs' sizes
}

// Item is one entry after the manifest and its signature.
type Item struct {
	Digest store.Digest `json:"digest"`
	Size   int64        `json:"size"`
	// Ref says what needs the blob: "KIND/NAME/PATH" or
	// "KIND/NAME (tree)"; for records, the snapshot ID.
	Ref string `json:"ref,omitempty"`
}

// entries returns every item in stream order with its tar name.
func (m *Manifest) entries() []entry {
	out := make([]entry, 0, len(m.Records)+len(m.Blobs))
	for _, it := range m.Records {
		out = append(out, entry{Item: it, name: recordsDir + it.Ref + ".json", record: true})
	}
	for _, it := range m.Blobs {
		out = append(out, entry{Item: it, name: blobsDir + string(it.Digest)})
	}
	return out
}

type entry struct {
	Item
	name   string
	record bool
}

func (e entry) String() string {
	if e.record {
		return "snapshot record " + e.Ref
	}
	return fmt.Sprintf("blob %s (%s, %d bytes)", e.Digest, e.Ref, e.Size)
}

func (m *Manifest) encode() ([]byte, error) {
	data, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, fmt.Errorf("encoding manifest: %w", err)
	}
	return append(data, '\n'), nil
}

// decodeManifest parses and checks a manifest (after its signature was
// accepted).
func decodeManifest(data []byte) (*Manifest, error) {
	m := new(Manifest)
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(m); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if m.Format != Format {
		return nil, fmt.Errorf("%w: manifest format %q, this mirrord reads %q (a newer mirrord made it?)", ErrCorrupt, m.Format, Format)
	}
	if _, err := snapshot.ParseID(m.Snapshot); err != nil {
		return nil, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if m.Base != "" {
		if _, err := snapshot.ParseID(m.Base); err != nil {
			return nil, fmt.Errorf("%w: manifest base: %v", ErrCorrupt, err)
		}
	}
	if len(m.Records) != 1 || m.Records[0].Ref != m.Snapshot {
		return nil, fmt.Errorf("%w: manifest must list exactly the record of snapshot %s", ErrCorrupt, m.Snapshot)
	}
	var total int64
	for _, it := range append(m.Records[:1:1], m.Blobs...) {
		if _, err := store.ParseDigest(string(it.Digest)); err != nil || it.Size < 0 {
			return nil, fmt.Errorf("%w: manifest entry %q: bad digest or size", ErrCorrupt, it.Digest)
		}
	}
	for _, it := range m.Blobs {
		total += it.Size
	}
	if total != m.Bytes {
		return nil, fmt.Errorf("%w: manifest: blob sizes add up to %d, blob_bytes says %d", ErrCorrupt, total, m.Bytes)
	}
	return m, nil
}
