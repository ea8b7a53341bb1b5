// Package source defines the interface every source kind (apt, yum, git,
// file) implements, and what a sync hands to it.
package source

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// Env is what a source gets for one sync. Nothing in it is global; the
// syncer builds one per source per run.
type Env struct {
	Blobs    store.Blobs
	Fetch    *fetch.Fetcher
	Catalog  *snapshot.Catalog
	Prev     *snapshot.SourceRecord // this source in the previous snapshot, or nil
	Progress progress.Reporter
	Log      *slog.Logger
	// Signer is mirrord's own key, for kinds that publish re-signed
	// metadata (apt Release/InRelease, yum repomd.xml.asc).
	Signer *signing.Key
	// PublicURL is where clients reach this mirrord (config public_url).
	PublicURL string
}

// Result is what a sync produced: the files of the source's tree (all
// already in Blobs), and optionally the items a diff should compare.
type Result struct {
	Upstream string
	Entries  []snapshot.Entry
	Items    []snapshot.Item // nil: the files are the items
	Refs     map[string]string
	Meta     map[string]string
}

// Source is one configured upstream.
type Source interface {
	Kind() string
	Name() string
	// Sync fetches and verifies the upstream into env.Blobs and returns the
	// tree. It must not return a tree naming blobs it has not stored.
	Sync(ctx context.Context, env *Env) (*Result, error)
}

// ClientConfig is the part of `mirrord client-config` a kind contributes.
type ClientConfig interface {
	// ClientConfig returns a config snippet for clients of base, the URL of
	// this source inside a snapshot or channel (".../apt/NAME").
	ClientConfig(base, keyURL string) string
}

// Key returns "KIND/NAME".
func Key(s Source) string { return s.Kind() + "/" + s.Name() }

// CheckName validates a source name.
func CheckName(name string) error {
	if !config.ValidName(name) {
		return fmt.Errorf("source name %q: use lowercase letters, digits, '.', '_' and '-'", name)
	}
	return nil
}
