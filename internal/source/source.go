// Package source defines the interface every source kind (apt, yum, git,
// file) implements, and what a sync hands to it.
package source

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"

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

// ClientFile says where a node keeps one source's client configuration.
type ClientFile struct {
	// Path is the file, absolute on the node. The snippets of several
	// sources with the same Path are concatenated (git's one gitconfig).
	Path string
	// Key, when set, is where the node needs mirrord's public key (the
	// Signed-By of apt's .sources).
	Key string
	// IncludedBy, when set, is a git-config file that must include Path.
	IncludedBy string
}

// ClientFiler is an optional capability of ClientConfig kinds: where the
// snippet goes on a node (the bootstrap script and `client-config --consul
// --write` install it there).
type ClientFiler interface {
	ClientFile() ClientFile
}

// PlannedFile is one file of a ClientPlan.
type PlannedFile struct {
	Path string
	Text string
}

// Snippet is the client configuration of a source that has no client file
// (the file kind's URL list).
type Snippet struct {
	Source string // KIND/NAME
	Text   string
}

// ClientPlan is every file a node needs to use some sources of a mirror.
type ClientPlan struct {
	Files    []PlannedFile // in the order of the sources; shared paths once
	Keys     []string      // where mirrord's public key goes
	Includes [][2]string   // {git-config file, file it must include}
	Unfiled  []Snippet
}

// PlanClientFiles renders the client configuration of every source that
// has one, for clients of the URL base(s) (".../snapshots/ID/KIND/NAME"),
// and groups it by file. keyURL is where mirrord's public key is served.
func PlanClientFiles(srcs []Source, base func(Source) string, keyURL string) ClientPlan {
	var p ClientPlan
	at := map[string]int{}
	for _, s := range srcs {
		cc, ok := s.(ClientConfig)
		if !ok {
			continue
		}
		text := cc.ClientConfig(base(s), keyURL)
		cf, ok := s.(ClientFiler)
		if !ok {
			p.Unfiled = append(p.Unfiled, Snippet{Key(s), text})
			continue
		}
		f := cf.ClientFile()
		if i, ok := at[f.Path]; ok {
			p.Files[i].Text += text
		} else {
			at[f.Path] = len(p.Files)
			p.Files = append(p.Files, PlannedFile{f.Path, text})
		}
		if f.Key != "" && !slices.Contains(p.Keys, f.Key) {
			p.Keys = append(p.Keys, f.Key)
		}
		if inc := [2]string{f.IncludedBy, f.Path}; f.IncludedBy != "" && !slices.Contains(p.Includes, inc) {
			p.Includes = append(p.Includes, inc)
		}
	}
	return p
}

// ClientConfigText is every source's client configuration for clients of
// base(s) (".../snapshots/ID/KIND/NAME"), one snippet after another.
func ClientConfigText(srcs []Source, base func(Source) string, keyURL string) string {
	var out []string
	for _, s := range srcs {
		if cc, ok := s.(ClientConfig); ok {
			out = append(out, cc.ClientConfig(base(s), keyURL))
		}
	}
	return strings.Join(out, "\n")
}

// Under is the base function of sources served under root (a snapshot or
// channel URL): root/KIND/NAME.
func Under(root string) func(Source) string {
	return func(s Source) string { return root + "/" + Key(s) }
}
