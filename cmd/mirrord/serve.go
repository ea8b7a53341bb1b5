package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"sync/atomic"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mirrord/mirrord/internal/apt"
	"github.com/mirrord/mirrord/internal/bundle"
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/debver"
	"github.com/mirrord/mirrord/internal/deploy"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/rpmver"
	"github.com/mirrord/mirrord/internal/server"
	"github.com/mirrord/mirrord/internal/service"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/syncer"
	"github.com/mirrord/mirrord/internal/yum"
)

func newServeCmd(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve snapshots, channels, the JSON API, metrics and the web UI over HTTP",
		Long: `serve answers the URL layout of DESIGN.md: /snapshots/ID/KIND/NAME/...,
/channels/CHANNEL/..., /keys/mirrord.asc, /api/v1/..., /metrics, /healthz and /.
With sync.interval set it also runs scheduled syncs. Every sync (scheduled or
POST /api/v1/syncs) reads the config file as it is then; SIGHUP reloads it for
everything that can change without a restart (sources, sync settings, the
auth token) and logs the keys that need one (listen, data_dir, consul, ...).`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := g.open()
			if err != nil {
				return err
			}
			adjust := func(cfg *config.Config) error {
				if listen == "" {
					return nil
				}
				return cfg.SetListen(listen)
			}
			if err := adjust(a.cfg); err != nil {
				return usageError{err}
			}
			return a.serve(cmd.Context(), g, adjust)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on (overrides the config's listen; public_url follows unless the config sets it)")
	return cmd
}

func (a *app) serve(ctx context.Context, g *globals, adjust func(*config.Config) error) error {
	token, err := a.cfg.Token()
	if err != nil {
		return usageError{err}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	reload := make(chan struct{})
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	// The hub shows each sync's progress and log on the web UI's sync page.
	hub := progress.NewHub()
	opt := service.Options{
		Config: a.cfg, Load: config.Load, Adjust: adjust, Log: a.log, Reload: reload, Hub: hub,
		Ready: func() { // Type=notify units (deploy/systemd)
			if _, err := deploy.Notify("READY=1"); err != nil {
				a.log.Warn("systemd readiness", "err", err)
			}
		},
	}
	srcs, err := a.sources(a.cfg)
	if err != nil {
		return err
	}
	// The key syncs sign with; a serving replica of a shared store may
	// lack it (it then neither syncs nor exports).
	key, keyErr := a.signingKey(ctx)
	if len(srcs) > 0 {
		prog := progress.Tee(progress.New(g.stderr, a.log), hub)
		newSyncer := func(cfg *config.Config) (*syncer.Syncer, error) {
			s, err := a.syncerFor(cfg, prog, nil)
			if err == nil {
				s.Log = slog.New(hub.LogHandler(s.Log.Handler()))
			}
			return s, err
		}
		switch _, err := newSyncer(a.cfg); {
		case errors.Is(err, signing.ErrNoKey):
			// A serving replica of a shared store: another one syncs.
			a.log.Warn("not running syncs on this replica", "reason", err)
		case err != nil:
			return err
		default:
			opt.NewSyncer = newSyncer
		}
	}
	svc := service.New(opt)
	h, err := server.New(server.Options{
		Catalog: a.catalog, PublicKeyFunc: a.publicKey(), Token: token,
		Logger: a.log, Registry: a.reg, Version: version, Kinds: a.kindServers(),
		Syncs: svc.Syncs(ctx), Presign: a.store.Presign, Exporter: a.exporter(key, keyErr), Bootstrap: a.bootstrapScript,
		UI: a.uiOptions(srcs, key), SecureWrites: a.cfg.TLS != nil,
	})
	if err != nil {
		return err
	}
	var tlsCfg *tls.Config
	if t := a.cfg.TLS; t != nil {
		if tlsCfg, err = server.LoadTLS(t.CertFile, t.KeyFile); err != nil {
			return usageError{err}
		}
	}
	lim := server.Limits{MaxConnections: a.cfg.Serve.MaxConnections, HeaderTimeout: a.cfg.Serve.HeaderTimeout.Duration}
	raw, err := net.Listen("tcp", a.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen %s: %w (is another mirrord or web server running there? set listen: or --listen)", a.cfg.Listen, err)
	}
	ln := server.Listen(raw, tlsCfg, lim)
	svc.SetServer(server.HTTPServer(h, a.log, lim), h, ln)
	if a.consul != nil {
		a.consul.OnChange(func() { h.Refresh(context.WithoutCancel(ctx)) })
		svc.SetReplica(a.consul)
	}
	a.announce(ctx, ln.Addr().String(), token != "")
	return svc.Run(ctx)
}

func (a *app) announce(ctx context.Context, addr string, writable bool) {
	base := a.cfg.PublicURL
	a.log.Info("serving", "listen", addr, "public_url", base, "write_api", writable, "tls", a.cfg.TLS != nil)
	if a.cfg.TLS != nil {
		a.log.Info("tls: HTTPS on listen; plain HTTP on the same port answers reads only, writes over it are refused unless the peer is this host", "listen", addr)
	}
	a.log.Info("try", "ui", base+"/", "snapshots", base+"/snapshots/", "api", base+"/api/v1/snapshots", "key", base+"/keys/mirrord.asc", "metrics", base+"/metrics")
	if rec, err := a.catalog.Latest(ctx); err == nil {
		a.log.Info("try", "latest", base+"/snapshots/"+rec.ID+"/", "sources", len(rec.Sources), "client_config", "mirrord client-config --snapshot "+rec.ID)
	}
	if chans, err := a.catalog.Channels(ctx); err == nil {
		for _, ch := range chans {
			a.log.Info("try", "channel", ch.Name, "snapshot", ch.Snapshot, "url", base+"/channels/"+ch.Name+"/")
		}
	}
}

// publicKey returns what /keys/mirrord.asc serves: the store's signing
// identity (or this replica's key file before any sync recorded one),
// remembered once the store names it.
func (a *app) publicKey() func(ctx context.Context) ([]byte, error) {
	var known atomic.Pointer[[]byte]
	return func(ctx context.Context) ([]byte, error) {
		if k := known.Load(); k != nil {
			return *k, nil
		}
		meta := a.catalog.Store().Meta()
		k, _, err := signing.Recorded(ctx, meta)
		if err == nil {
			known.Store(&k)
			return k, nil
		}
		if !store.IsNotExist(err) {
			return nil, err
		}
		return signing.PublicFor(ctx, meta, a.cfg.Signing.KeyFile)
	}
}

// exporter serves GET /api/v1/snapshots/{ID}/export, signed with the
// store's signing key; nil (the route answers 501) on a replica that does
// not hold the key.
func (a *app) exporter(key *signing.Key, keyErr error) server.Exporter {
	if keyErr != nil {
		a.log.Warn("bundle export disabled on this replica", "reason", keyErr)
		return nil
	}
	return &bundle.Exporter{Catalog: a.catalog, Key: key}
}

// uiOptions is what the web UI shows beyond the catalog: client
// configuration, version order per kind, the key, replicas from Consul.
func (a *app) uiOptions(srcs []source.Source, key *signing.Key) server.UIOptions {
	ui := server.UIOptions{Compare: map[string]func(a, b string) int{apt.Kind: debver.Compare, yum.Kind: rpmver.Compare}}
	if key != nil {
		ui.KeyFingerprint = key.Fingerprint()
	}
	keyURL := a.cfg.PublicURL + "/keys/mirrord.asc"
	ui.ClientConfig = func(root string, keys []string) string {
		var in []source.Source
		for _, s := range srcs {
			if slices.Contains(keys, source.Key(s)) {
				in = append(in, s)
			}
		}
		return source.ClientConfigText(in, source.Under(a.cfg.PublicURL+root), keyURL)
	}
	if a.consulClient != nil {
		ui.Replicas = func(ctx context.Context) ([]server.Replica, error) {
			is, err := a.consulClient.Healthy(ctx, a.cfg.Consul.Service)
			out := make([]server.Replica, 0, len(is))
			for _, i := range is {
				out = append(out, server.Replica{ID: i.ID, Node: i.Node, URL: i.URL(), Latest: i.Meta["latest_snapshot"], Channels: i.Channels()})
			}
			return out, err
		}
	}
	return ui
}
