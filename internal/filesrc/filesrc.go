// Package filesrc is the "file" source kind: plain URLs pinned by sha256
// (VM images, tarballs). A file already in the store costs no request.
package filesrc

import (
	"context"
	"fmt"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store"
)

// File is one pinned URL.
type File struct {
	URL    string
	SHA256 string
	Path   string // path inside the source's tree
}

// Source mirrors a list of pinned files.
type Source struct {
	name  string
	files []File
}

// New returns a file source; paths and digests are validated here so a bad
// config fails before any download.
func New(name string, files []File) (*Source, error) {
	if err := source.CheckName(name); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, f := range files {
		if _, err := snapshot.CleanPath(f.Path); err != nil {
			return nil, fmt.Errorf("file/%s: %w", name, err)
		}
		if _, err := store.ParseDigest(strings.ToLower(f.SHA256)); err != nil {
			return nil, fmt.Errorf("file/%s: %s: %w", name, f.URL, err)
		}
		if seen[f.Path] {
			return nil, fmt.Errorf("file/%s: path %q listed twice", name, f.Path)
		}
		seen[f.Path] = true
	}
	return &Source{name: name, files: files}, nil
}

// Kind implements source.Source.
func (s *Source) Kind() string { return "file" }

// Name implements source.Source.
func (s *Source) Name() string { return s.name }

// Sync downloads every file not yet in the store, verifying size cap and
// sha256 while streaming.
func (s *Source) Sync(ctx context.Context, env *source.Env) (*source.Result, error) {
	entries := make([]snapshot.Entry, len(s.files))
	task := env.Progress.Task("file/"+s.name, progress.Items("files"), int64(len(s.files)))
	g, gctx := errgroup.WithContext(fetch.WithProgress(ctx, task.Fetched))
	g.SetLimit(8)
	for i, f := range s.files {
		g.Go(func() error {
			d := store.Digest(strings.ToLower(f.SHA256))
			info, err := env.Fetch.Blob(gctx, f.URL, store.Expect{Digest: d})
			if err != nil {
				return fmt.Errorf("%s: %w", f.Path, fetch.ConfigMismatch(err))
			}
			entries[i] = snapshot.Entry{Path: f.Path, Digest: info.Digest, Size: info.Size}
			task.Add(1)
			return nil
		})
	}
	err := g.Wait()
	task.Done(err)
	if err != nil {
		return nil, err
	}
	return &source.Result{Entries: entries}, nil
}

// ClientConfig implements source.ClientConfig.
func (s *Source) ClientConfig(base, _ string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# file/%s\n", s.name)
	for _, f := range s.files {
		fmt.Fprintf(&b, "%s/%s  sha256:%s\n", base, f.Path, strings.ToLower(f.SHA256))
	}
	return b.String()
}
