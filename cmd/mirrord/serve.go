package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/server"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/syncer"
)

func newServeCmd(g *globals) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve snapshots, channels, the JSON API, metrics and the web UI over HTTP",
		Long: `serve answers the URL layout of DESIGN.md: /snapshots/ID/KIND/NAME/...,
/channels/CHANNEL/..., /keys/mirrord.asc, /api/v1/..., /metrics, /healthz and /.
With sync.interval set it also runs scheduled syncs.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := g.open()
			if err != nil {
				return err
			}
			if listen != "" {
				a.cfg.Listen = listen
			}
			return a.serve(cmd.Context(), g)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to listen on (overrides the config's listen)")
	return cmd
}

func (a *app) serve(ctx context.Context, g *globals) error {
	key, err := signing.LoadOrCreate(a.cfg.Signing.KeyFile, "mirrord")
	if err != nil {
		return fmt.Errorf("signing key: %w", err)
	}
	token, err := a.cfg.Token()
	if err != nil {
		return usageError{err}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var h *server.Server // set before any job can run
	jobs, run, err := a.jobs(ctx, g, func(ctx context.Context) { h.Refresh(ctx) })
	if err != nil {
		return err
	}
	opt := server.Options{
		Catalog: a.catalog, PublicKey: key.PublicArmored(), Token: token,
		Logger: a.log, Registry: a.reg, Version: version, Kinds: a.kindServers(),
		SecureWrites: a.cfg.TLS != nil,
	}
	if jobs != nil {
		opt.Syncs = syncsAdapter{jobs}
	}
	h, err = server.New(opt)
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
	stopConsul, err := a.consulServe(ctx, ln.Addr().String(), h)
	if err != nil {
		ln.Close()
		return err
	}
	defer stopConsul()
	a.announce(ctx, ln.Addr().String(), token != "")
	if jobs != nil && a.cfg.Sync.Interval.Duration > 0 {
		if a.consul != nil {
			a.consulSchedule(ctx, run, a.cfg.Sync.Interval.Duration) // only while leading
		} else {
			go schedule(ctx, a.log, jobs, a.cfg.Sync.Interval.Duration)
		}
	}
	return runHTTP(ctx, ln, server.HTTPServer(h, a.log, lim), a.log)
}

// jobs returns the background sync runner (nil without sources); done is
// called after each successful sync.
func (a *app) jobs(ctx context.Context, g *globals, done func(context.Context)) (*syncer.Jobs, syncRun, error) {
	srcs, err := a.sources()
	if err != nil || len(srcs) == 0 {
		return nil, nil, err
	}
	s, err := a.syncer(progress.New(g.stderr, a.log), nil)
	if err != nil {
		return nil, nil, err
	}
	run := func(ctx context.Context, names []string) (string, error) {
		rec, err := s.Run(ctx, names)
		if err != nil {
			return "", err
		}
		done(ctx)
		return rec.ID, nil
	}
	return syncer.NewJobs(ctx, run), run, nil
}

func (a *app) announce(ctx context.Context, addr string, writable bool) {
	base := a.cfg.PublicURL
	a.log.Info("serving", "listen", addr, "public_url", base, "write_api", writable, "tls", a.cfg.TLS != nil)
	if a.cfg.TLS != nil {
		a.log.Info("tls: HTTPS on listen; plain HTTP on the same port answers reads only, writes over it are refused unless the peer is this host", "listen", addr)
	}
	a.log.Info("try", "ui", base+"/", "snapshots", base+"/snapshots/", "api", base+"/api/v1/snapshots", "key", base+"/keys/mirrord.asc", "metrics", base+"/metrics")
	if rec, err := a.catalog.Latest(ctx); err == nil {
		for _, s := range rec.Sources {
			u := base + "/snapshots/" + rec.ID + "/" + s.Key() + "/"
			if s.Kind == "git" {
				u = "git clone " + strings.TrimSuffix(u, "/") + ".git"
			}
			a.log.Info("try", "source", s.Key(), "url", u)
		}
	}
	if chans, err := a.catalog.Channels(ctx); err == nil {
		for _, ch := range chans {
			a.log.Info("try", "channel", ch.Name, "snapshot", ch.Snapshot, "url", base+"/channels/"+ch.Name+"/")
		}
	}
}

func runHTTP(ctx context.Context, ln net.Listener, srv *http.Server, log *slog.Logger) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func schedule(ctx context.Context, log *slog.Logger, jobs *syncer.Jobs, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := jobs.Start(ctx, nil); err != nil {
				log.Warn("scheduled sync skipped", "err", err)
			}
		}
	}
}

// syncsAdapter maps the syncer's errors onto the server's.
type syncsAdapter struct{ j *syncer.Jobs }

func (s syncsAdapter) Start(ctx context.Context, sources []string) (int, error) {
	id, err := s.j.Start(ctx, sources)
	if errors.Is(err, syncer.ErrRunning) {
		return 0, fmt.Errorf("%w: %w", server.ErrSyncRunning, err)
	}
	return id, err
}

func (s syncsAdapter) Status(id int) (any, bool) { return s.j.Status(id) }
