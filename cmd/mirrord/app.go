package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/consul"
	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/filesrc"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store"
	storeopen "github.com/mirrord/mirrord/internal/store/open"
	"github.com/mirrord/mirrord/internal/syncer"
)

// app holds the dependencies one command needs, built from the config in
// one place and passed down; nothing is global.
type app struct {
	cfg     *config.Config
	log     *slog.Logger
	catalog *snapshot.Catalog
	reg     *prometheus.Registry
	consul  *consul.Replica // nil without consul: in the config
	// consulClient is the Consul client when consul: is configured.
	consulClient *consul.Client

	store       *storeopen.Opened
	metricsOnce sync.Once
	met         appMetrics
}

// appMetrics are registered once per process, however many syncers serve
// builds.
type appMetrics struct {
	fetch *fetch.Metrics
	sync  *syncer.Metrics
}

func (a *app) metrics() appMetrics {
	a.metricsOnce.Do(func() {
		a.met = appMetrics{fetch: fetch.NewMetrics(a.reg), sync: syncer.NewMetrics(a.reg)}
	})
	return a.met
}

// consulOptions is the Consul client configuration of cfg.
func consulOptions(cfg *config.Config, log *slog.Logger) consul.Options {
	cc := cfg.Consul
	return consul.Options{Address: cc.Address, Token: cc.Token, Datacenter: cc.Datacenter, Prefix: cc.Prefix, Logger: log}
}

// signingKey returns the key syncs sign with: the one the store names
// (signing.key_file must hold it), or, for a store that names none yet,
// the configured key (generated when absent), which becomes the store's.
func (a *app) signingKey(ctx context.Context) (*signing.Key, error) {
	key, err := signing.ForSync(ctx, a.catalog.Store().Meta(), a.cfg.Signing.KeyFile, "mirrord")
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return key, nil
}

func (g *globals) open() (*app, error) {
	path, err := config.Find(g.config, os.Getenv("MIRRORD_CONFIG"))
	if err != nil {
		return nil, usageError{err}
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, usageError{err}
	}
	log := g.logger()
	var locker store.Locker // nil: the store's own locks
	if cfg.Consul != nil && cfg.Store.Kind == config.StoreS3 {
		c, err := consul.New(consulOptions(cfg, log))
		if err != nil {
			return nil, usageError{fmt.Errorf("%s: consul: %w", cfg.Path, err)}
		}
		locker = c.Locks()
	}
	// Opening reads only local files (credentials); no request is made.
	st, err := storeopen.Open(context.Background(), storeopen.Options{
		Store: cfg.Store, Cache: cfg.Cache, DataDir: cfg.DataDir, Locker: locker, Logger: log,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: store: %w", cfg.Path, err)
	}
	a := &app{cfg: cfg, log: log, catalog: snapshot.New(st), reg: prometheus.NewRegistry(), store: st}
	if cfg.Consul != nil {
		if err := a.openConsul(); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// sources builds every source cfg configures. Each kind has its builder
// in kind_KIND.go.
func (a *app) sources(cfg *config.Config) ([]source.Source, error) {
	var out []source.Source
	git := func(cfg *config.Config) ([]source.Source, error) { return gitSources(cfg, a.gitCacheDir()) }
	for _, build := range []func(*config.Config) ([]source.Source, error){aptSources, yumSources, git} {
		srcs, err := build(cfg)
		if err != nil {
			return nil, err
		}
		out = append(out, srcs...)
	}
	for _, f := range cfg.File {
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
	return a.syncerFor(a.cfg, prog, onBytes)
}

// syncerFor builds a syncer for cfg (serve builds one per sync, from the
// config file as it is then) over this app's store.
func (a *app) syncerFor(cfg *config.Config, prog progress.Reporter, onBytes func(int64)) (*syncer.Syncer, error) {
	srcs, err := a.sources(cfg)
	if err != nil {
		return nil, err
	}
	if len(srcs) == 0 {
		return nil, usageError{fmt.Errorf("%s: no sources configured (add apt:, yum:, git: or file: entries)", cfg.Path)}
	}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment, MaxIdleConnsPerHost: 16,
		IdleConnTimeout: 90 * time.Second, ResponseHeaderTimeout: cfg.Sync.ReadTimeout.Duration,
	}
	// Local upstreams (file:// URLs, or plain paths in the config).
	tr.RegisterProtocol("file", fetch.FileTransport())
	client := &http.Client{Transport: tr}
	f := fetch.New(a.catalog.Store().Blobs(), fetch.Options{
		Client: client, PerHost: cfg.Sync.PerHost, Retries: cfg.Sync.Retries, StallTimeout: cfg.Sync.ReadTimeout.Duration,
		UserAgent: "mirrord/" + version, Logger: a.log, Metrics: a.metrics().fetch, OnBytes: onBytes,
	})
	// Only apt and yum publish signed metadata; file and git syncs need
	// no key (and should not pay for generating one).
	var key *signing.Key
	if len(cfg.Apt)+len(cfg.Yum) > 0 {
		if key, err = a.signingKey(context.Background()); err != nil {
			return nil, err
		}
	}
	return &syncer.Syncer{
		Signer: key, PublicURL: cfg.PublicURL,
		Catalog: a.catalog, Fetch: f, Progress: prog, Log: a.log,
		Sources:     srcs,
		Concurrency: cfg.Sync.Concurrency, Metrics: a.metrics().sync,
	}, nil
}
