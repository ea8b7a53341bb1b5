// Package service is the long-running part of `mirrord serve`: the HTTP
// listener, syncs started through the API or by the schedule (each with the
// config file as it is when the sync starts), SIGHUP reloads, and, with
// Consul, the replica's duties. cmd/mirrord builds the pieces and calls Run.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/ctxtime"
	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/server"
	"github.com/mirrord/mirrord/internal/syncer"
)

// Replica is what serve does in Consul when it is configured
// (consul.Replica implements it).
type Replica interface {
	// Start follows channel changes, registers the service at addr and
	// publishes snapshot summaries until ctx ends; stop waits for that.
	Start(ctx context.Context, addr string) (stop func(), err error)
	// Lead runs sync whenever interval() has passed since the last one,
	// but only while this replica holds the leader lock. It returns when
	// ctx ends.
	Lead(ctx context.Context, sync func(ctx context.Context) (string, error), interval func() time.Duration)
}

// Options are what Run needs; cmd/mirrord builds them.
type Options struct {
	// Config is the config loaded at start. Reloads and syncs re-read
	// Config.Path with Load.
	Config *config.Config
	Load   func(path string) (*config.Config, error)
	// Adjust is applied to every (re)loaded config before use (serve's
	// command-line overrides, such as --listen).
	Adjust func(*config.Config) error
	// NewSyncer builds a syncer for cfg; a usage problem (no sources) is
	// an error. Nil: this server runs no syncs.
	NewSyncer func(cfg *config.Config) (*syncer.Syncer, error)
	Log       *slog.Logger
	// Reload receives a value for every SIGHUP.
	Reload <-chan struct{}
	// Ready, if set, is called once the listener serves (sd_notify).
	Ready func()
	// Hub, if set, is the progress hub the syncers report to; each job
	// shows its state (the web UI's live sync page).
	Hub *progress.Hub
}

// Service runs one serve process. Create it with New, hand Syncs to the
// server, then SetServer (and SetReplica with Consul) and Run.
type Service struct {
	opt     Options
	cfg     atomic.Pointer[config.Config]
	jobs    *syncer.Jobs
	http    *http.Server
	srv     *server.Server
	ln      net.Listener
	replica Replica // nil without consul:
}

// SetServer sets what Run serves: hs (whose Handler is h; nil: a default
// http.Server for h) on ln.
func (s *Service) SetServer(hs *http.Server, h *server.Server, ln net.Listener) {
	if hs == nil {
		hs = &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute,
			ErrorLog: slog.NewLogLogger(s.opt.Log.Handler(), slog.LevelWarn)}
	}
	s.http, s.srv, s.ln = hs, h, ln
}

// SetReplica makes Run do a replica's duties in Consul, and run scheduled
// syncs only while it leads.
func (s *Service) SetReplica(r Replica) { s.replica = r }

// New returns a service for opt.
func New(opt Options) *Service {
	s := &Service{opt: opt}
	s.cfg.Store(opt.Config)
	return s
}

// Config returns the config in force (as of the last reload).
func (s *Service) Config() *config.Config { return s.cfg.Load() }

// Syncs is the server's view of this service's sync jobs (nil when it runs
// no syncs). Call it before Run, to fill server.Options.Syncs.
func (s *Service) Syncs(ctx context.Context) server.Syncs {
	if s.opt.NewSyncer == nil {
		return nil
	}
	if s.jobs == nil {
		s.jobs = syncer.NewJobs(ctx, s.opt.Hub, nil)
	}
	return syncs{s}
}

// Run serves until ctx ends, then shuts down gracefully.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := func() {}
	if s.replica != nil {
		var err error
		if stop, err = s.replica.Start(ctx, s.ln.Addr().String()); err != nil {
			s.ln.Close()
			return err
		}
	}
	defer stop()
	if s.opt.NewSyncer != nil {
		s.Syncs(ctx)
		if s.replica != nil {
			go s.replica.Lead(ctx, s.scheduledSync, s.interval)
		} else {
			go s.schedule(ctx)
		}
	}
	go s.reloads(ctx)
	return s.serveHTTP(ctx)
}

func (s *Service) serveHTTP(ctx context.Context) error {
	log, srv := s.opt.Log, s.http
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(s.ln) }()
	if s.opt.Ready != nil {
		s.opt.Ready()
	}
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

// load reads the config file as it is now.
func (s *Service) load() (*config.Config, error) {
	cfg, err := s.opt.Load(s.opt.Config.Path)
	if err != nil {
		return nil, err
	}
	if s.opt.Adjust != nil {
		if err := s.opt.Adjust(cfg); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// prepare builds a syncer from the config file as it is now.
func (s *Service) prepare(sources []string) (*syncer.Syncer, error) {
	cfg, err := s.load()
	if err != nil {
		return nil, err
	}
	sy, err := s.opt.NewSyncer(cfg)
	if err != nil {
		return nil, err
	}
	if err := sy.Check(sources); err != nil {
		return nil, err
	}
	return sy, nil
}

// runner is one job's sync: it refreshes the server's view when it wrote
// (or confirmed) a snapshot.
func (s *Service) runner(sy *syncer.Syncer) syncer.RunFunc {
	return func(ctx context.Context, sources []string) (string, error) {
		rec, err := sy.Run(ctx, sources)
		if err != nil {
			return "", err
		}
		s.srv.Refresh(ctx)
		return rec.ID, nil
	}
}

// syncs adapts the jobs to server.Syncs.
type syncs struct{ s *Service }

func (a syncs) Start(ctx context.Context, sources []string) (int, error) {
	sy, err := a.s.prepare(sources)
	if err != nil {
		return 0, fmt.Errorf("%w: %w", server.ErrBadRequest, err)
	}
	id, err := a.s.jobs.StartWith(ctx, sources, a.s.runner(sy))
	if errors.Is(err, syncer.ErrRunning) {
		return 0, fmt.Errorf("%w: %w", server.ErrSyncRunning, err)
	}
	return id, err
}

func (a syncs) Status(id int) (any, bool) { return a.s.jobs.Status(id) }

// Latest implements server.SyncLister.
func (a syncs) Latest() (int, bool) { return a.s.jobs.Latest() }

// Watch implements server.SyncWatcher.
func (a syncs) Watch(ctx context.Context, id int) (<-chan any, bool) { return a.s.jobs.Watch(ctx, id) }

// scheduledSync is one scheduled sync, run in the foreground of the
// schedule (the leader's, with Consul).
func (s *Service) scheduledSync(ctx context.Context) (string, error) {
	sy, err := s.prepare(nil)
	if err != nil {
		return "", fmt.Errorf("config %s: %w", s.opt.Config.Path, err)
	}
	return s.runner(sy)(ctx, nil)
}

func (s *Service) interval() time.Duration { return s.Config().Sync.Interval.Duration }

// schedule starts a sync job every sync.interval (read anew each time, so a
// reload can change it; 0 pauses the schedule).
func (s *Service) schedule(ctx context.Context) {
	for {
		every := s.interval()
		wait := every
		if wait <= 0 {
			wait = time.Minute // re-read after a reload
		}
		if ctxtime.Sleep(ctx, wait) != nil {
			return
		}
		if every <= 0 || s.interval() <= 0 {
			continue
		}
		sy, err := s.prepare(nil)
		if err != nil {
			s.opt.Log.Error("scheduled sync not started: the config file is broken", "config", s.opt.Config.Path, "err", err)
			continue
		}
		if _, err := s.jobs.StartWith(ctx, nil, s.runner(sy)); err != nil {
			s.opt.Log.Warn("scheduled sync skipped", "err", err)
		}
	}
}

// reloads applies the config file on every SIGHUP.
func (s *Service) reloads(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.opt.Reload:
			s.reload()
		}
	}
}

// reload re-reads the config and applies what can change while serving:
// sources (every sync reads them anyway), sync settings, the auth token,
// the public URL. Keys that need a restart are logged, not applied.
func (s *Service) reload() {
	log := s.opt.Log
	cfg, err := s.load()
	if err != nil {
		log.Error("config reload failed; keeping the running config", "config", s.opt.Config.Path, "err", err)
		return
	}
	token, err := cfg.Token()
	if err != nil {
		log.Error("config reload failed; keeping the running config", "config", s.opt.Config.Path, "err", err)
		return
	}
	if s.opt.NewSyncer != nil {
		if _, err := s.opt.NewSyncer(cfg); err != nil {
			log.Error("config reload failed; keeping the running config", "config", s.opt.Config.Path, "err", err)
			return
		}
	}
	old := s.cfg.Load()
	if fixed := NeedsRestart(old, cfg); len(fixed) > 0 {
		log.Warn("config keys changed that take effect only after a restart", "keys", fixed)
	}
	s.srv.SetToken(token)
	s.cfg.Store(cfg)
	log.Info("config reloaded", "config", cfg.Path, "sources", len(cfg.SourceNames()), "sync_interval", cfg.Sync.Interval.Duration, "public_url", cfg.PublicURL, "write_api", token != "")
}

// NeedsRestart lists the config keys that differ between a and b and that a
// running server cannot change: where it listens, what store it uses, its
// signing key, its Consul agent.
func NeedsRestart(a, b *config.Config) []string {
	var out []string
	for _, f := range []struct {
		key  string
		a, b any
	}{
		{"listen", a.Listen, b.Listen},
		{"data_dir", a.DataDir, b.DataDir},
		{"signing.key_file", a.Signing.KeyFile, b.Signing.KeyFile},
		{"consul", a.Consul, b.Consul},
	} {
		if !reflect.DeepEqual(f.a, f.b) {
			out = append(out, f.key)
		}
	}
	return out
}
