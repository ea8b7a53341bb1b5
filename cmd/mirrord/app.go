package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/filesrc"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store/fs"
	"github.com/mirrord/mirrord/internal/syncer"
)

// app holds the dependencies one command needs, built from the config in
// one place and passed down; nothing is global.
type app struct {
	cfg     *config.Config
	log     *slog.Logger
	catalog *snapshot.Catalog
	reg     *prometheus.Registry
	consul  *consulState // nil without consul: in the config
}

func (g *globals) open() (*app, error) {
	cfg, err := config.Load(g.config)
	if err != nil {
		return nil, usageError{err}
	}
	st, err := fs.Open(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("opening store %s: %w", cfg.DataDir, err)
	}
	a := &app{cfg: cfg, log: g.logger(), catalog: snapshot.New(st), reg: prometheus.NewRegistry()}
	if cfg.Consul != nil {
		if err := a.openConsul(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// sources builds every configured source. Each kind has its builder in
// kind_KIND.go.
func (a *app) sources() ([]source.Source, error) {
	var out []source.Source
	for _, build := range []func() ([]source.Source, error){a.aptSources, a.yumSources, a.gitSources} {
		srcs, err := build()
		if err != nil {
			return nil, err
		}
		out = append(out, srcs...)
	}
	for _, f := range a.cfg.File {
		files := make([]filesrc.File, len(f.Files))
		for i, e := range f.Files {
			files[i] = filesrc.File{URL: e.URL, SHA256: e.SHA256, Path: e.Path}
		}
		s, err := filesrc.New(f.Name, files)
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, s)
	}
	return out, nil
}

func (a *app) syncer(prog progress.Reporter, onBytes func(int64)) (*syncer.Syncer, error) {
	srcs, err := a.sources()
	if err != nil {
		return nil, err
	}
	if len(srcs) == 0 {
		return nil, usageError{fmt.Errorf("%s: no sources configured (add apt:, yum:, git: or file: entries)", a.cfg.Path)}
	}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 16,
		IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: a.cfg.Sync.ReadTimeout.Duration,
	}
	// Local upstreams (file:// URLs, or plain paths in the config).
	tr.RegisterProtocol("file", fetch.FileTransport())
	client := &http.Client{Transport: tr}
	f := fetch.New(a.catalog.Store().Blobs(), fetch.Options{
		Client: client, PerHost: a.cfg.Sync.PerHost, Retries: a.cfg.Sync.Retries, StallTimeout: a.cfg.Sync.ReadTimeout.Duration,
		UserAgent: "mirrord/" + version, Logger: a.log, Metrics: fetch.NewMetrics(a.reg), OnBytes: onBytes,
	})
	// Only apt and yum publish signed metadata; file and git syncs need
	// no key (and should not pay for generating one).
	var key *signing.Key
	if len(a.cfg.Apt)+len(a.cfg.Yum) > 0 {
		if key, err = signing.LoadOrCreate(a.cfg.Signing.KeyFile, "mirrord"); err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
	}
	return &syncer.Syncer{
		Signer: key, PublicURL: a.cfg.PublicURL,
		Catalog: a.catalog, Fetch: f, Progress: prog, Log: a.log,
		StateDir: filepath.Join(a.cfg.DataDir, "state"), Sources: srcs,
		Concurrency: a.cfg.Sync.Concurrency, Metrics: syncer.NewMetrics(a.reg),
	}, nil
}
