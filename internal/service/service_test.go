package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/server"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store/fs"
	"github.com/mirrord/mirrord/internal/syncer"
)

type nopSource struct{ name string }

func (n nopSource) Kind() string { return "file" }
func (n nopSource) Name() string { return n.name }
func (n nopSource) Sync(context.Context, *source.Env) (*source.Result, error) {
	return &source.Result{}, nil
}

const goodConfig = "data_dir: data\nfile: [{name: images, files: [{url: x, sha256: 0000000000000000000000000000000000000000000000000000000000000000}]}]\n"

// TestSyncsReadTheConfigNow: every API sync loads the config file as it is
// then; a broken file or an unknown source is ErrBadRequest (400).
func TestSyncsReadTheConfigNow(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mirrord.yaml")
	os.WriteFile(path, []byte(goodConfig), 0o644)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := fs.Open(filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	cat := snapshot.New(st)
	var built []string
	svc := New(Options{
		Config: cfg, Load: config.Load, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		NewSyncer: func(cfg *config.Config) (*syncer.Syncer, error) {
			built = append(built, cfg.File[0].Name)
			var srcs []source.Source
			for _, f := range cfg.File {
				srcs = append(srcs, nopSource{f.Name})
			}
			return &syncer.Syncer{Catalog: cat, Sources: srcs, Progress: progress.Discard(), Log: slog.New(slog.DiscardHandler)}, nil
		},
	})
	srv, err := server.New(server.Options{Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	svc.SetServer(nil, srv, nil)
	syncs := svc.Syncs(context.Background())

	os.WriteFile(path, []byte("data_dir: data\nbogus: 1\n"), 0o644)
	if _, err := syncs.Start(context.Background(), nil); !errors.Is(err, server.ErrBadRequest) {
		t.Errorf("broken config: %v, want ErrBadRequest", err)
	}
	os.WriteFile(path, []byte(goodConfig), 0o644)
	if _, err := syncs.Start(context.Background(), []string{"file/nope"}); !errors.Is(err, server.ErrBadRequest) || !errors.Is(err, syncer.ErrUnknownSource) {
		t.Errorf("unknown source: %v, want ErrBadRequest wrapping ErrUnknownSource", err)
	}
	os.WriteFile(path, []byte(goodConfig+"\n"), 0o644)
	if _, err := syncs.Start(context.Background(), []string{"file/images"}); err != nil {
		t.Errorf("good config: %v", err)
	}
	if len(built) != 2 {
		t.Errorf("syncers built %v; want one per Start that got past loading", built)
	}
}

func TestNeedsRestart(t *testing.T) {
	a, _ := config.Parse("mirrord.yaml", []byte("listen: 127.0.0.1:8080\n"))
	b, _ := config.Parse("mirrord.yaml", []byte("listen: 127.0.0.1:9090\nsync: {interval: 1h}\nconsul: {address: 127.0.0.1:8500}\n"))
	if got := NeedsRestart(a, b); !slices.Equal(got, []string{"listen", "consul"}) {
		t.Errorf("NeedsRestart = %v, want [listen consul] (sync.interval applies live)", got)
	}
	if got := NeedsRestart(a, a); len(got) != 0 {
		t.Errorf("NeedsRestart(a, a) = %v", got)
	}
}
