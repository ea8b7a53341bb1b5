package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mirrord/mirrord/internal/consul"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// consulState is what the commands need from Consul when consul: is
// configured (app.consul; nil otherwise).
type consulState struct {
	client *consul.Client
	chans  *consul.Channels
	// onChange is called when the watch sees channels change (serve sets
	// it to refresh the server's view at once).
	onChange atomic.Pointer[func()]
	svc      consul.Service // this replica, once serve registered it
	wg       sync.WaitGroup // serve's Consul goroutines
}

// syncRun does one sync and returns the new snapshot's ID.
type syncRun func(ctx context.Context, sources []string) (string, error)

// consulStateDir keeps what this replica knows of Consul between restarts.
func (a *app) consulStateDir() string { return filepath.Join(a.cfg.DataDir, "state", "consul") }

// openConsul connects the catalog's channels to Consul KV. It does not
// contact Consul.
func (a *app) openConsul() error {
	c, err := consul.New(consulOptions(a.cfg, a.log))
	if err != nil {
		return usageError{fmt.Errorf("%s: consul: %w", a.cfg.Path, err)}
	}
	st := &consulState{client: c}
	st.chans = c.Channels(consul.ChannelOptions{
		CacheFile: filepath.Join(a.consulStateDir(), "channels.json"),
		OnChange: func() {
			if f := st.onChange.Load(); f != nil {
				(*f)()
			}
		},
	})
	a.catalog.SetChannels(st.chans)
	a.consul = st
	return nil
}

// consulCheckInterval is the interval of the /healthz check Consul runs
// (consul.check_interval). It also bounds how fast another replica takes
// the sync lock over from one that died. MIRRORD_CONSUL_CHECK_INTERVAL
// overrides it.
func (a *app) consulCheckInterval() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("MIRRORD_CONSUL_CHECK_INTERVAL")); err == nil && d > 0 {
		return d
	}
	return a.cfg.Consul.CheckInterval.Duration
}

// consulServe makes this serve process a replica: it follows channel
// changes, registers the service (and deregisters it when ctx ends), and
// publishes snapshot summaries. stop waits for all of that (and for
// consulSchedule) to end after ctx is cancelled. Without consul: it does
// nothing.
func (a *app) consulServe(ctx context.Context, addr string, h http.Handler) (stop func(), err error) {
	st := a.consul
	if st == nil {
		return func() {}, nil
	}
	svc, err := a.consulService(addr)
	if err != nil {
		return nil, err
	}
	st.svc = svc
	if r, ok := h.(interface{ Refresh(context.Context) }); ok {
		f := func() { r.Refresh(context.WithoutCancel(ctx)) }
		st.onChange.Store(&f)
	}
	a.importChannels(ctx)
	if err := st.chans.Start(ctx); err != nil {
		a.log.Warn("channels unavailable until Consul answers", "err", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	st.wg.Add(2)
	go func() {
		defer st.wg.Done()
		st.client.Register(rctx, svc, consul.RegisterOptions{State: a.consulAdvertised})
	}()
	go func() {
		defer st.wg.Done()
		a.publishSummaries(rctx)
	}()
	return func() { cancel(); st.wg.Wait() }, nil
}

// consulService describes this replica: ID service-hostname-port, the
// listener's address ("" when it listens on every address, so Consul uses
// the node's), a check on /healthz.
func (a *app) consulService(addr string) (consul.Service, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return consul.Service{}, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return consul.Service{}, fmt.Errorf("listener port %q: %w", portStr, err)
	}
	checkHost := host
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() || host == "" {
		host, checkHost = "", "127.0.0.1"
	}
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "localhost"
	}
	name := a.cfg.Consul.Service
	return consul.Service{
		Name: name, ID: consul.ServiceID(name, hostname, port), Address: host, Port: port,
		CheckURL:      "http://" + net.JoinHostPort(checkHost, portStr) + "/healthz",
		CheckInterval: a.consulCheckInterval(),
		Meta:          map[string]string{"version": version},
	}, nil
}

// consulAdvertised is what the registration shows: the latest snapshot and
// where each channel points.
func (a *app) consulAdvertised(ctx context.Context) (consul.State, error) {
	var st consul.State
	rec, err := a.catalog.Latest(ctx)
	if err != nil && !errors.Is(err, snapshot.ErrNotFound) {
		return st, err
	}
	if rec != nil {
		st.LatestSnapshot = rec.ID
	}
	chans, err := a.catalog.Channels(ctx)
	if err != nil {
		return st, err
	}
	st.Channels = make(map[string]string, len(chans))
	for _, ch := range chans {
		st.Channels[ch.Name] = ch.Snapshot
	}
	return st, nil
}

// publishSummaries keeps PREFIX/snapshots/ in step with the catalog: after
// start, after each new or deleted snapshot, and after Consul comes back.
func (a *app) publishSummaries(ctx context.Context) {
	var done []string
	failing := false
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		ids, err := a.catalog.IDs(ctx)
		if err == nil && !slices.Equal(ids, done) {
			err = a.publishOnce(ctx)
			if err == nil {
				done = ids
			}
		}
		if err != nil && !failing && ctx.Err() == nil {
			a.log.Warn("publishing snapshot summaries to Consul failed; retrying", "err", err)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (a *app) publishOnce(ctx context.Context) error {
	recs, err := a.catalog.List(ctx)
	if err != nil {
		return err
	}
	added, removed, err := a.consul.client.PublishSnapshots(ctx, recs)
	if added+removed > 0 {
		a.log.Info("snapshot summaries published to Consul", "added", added, "removed", removed)
	}
	return err
}

// errSkip leaves a channel as it is in importChannels.
var errSkip = errors.New("already in Consul")

// importChannels copies channels kept in data_dir (before consul: was
// configured) into Consul KV, each once and only where KV has no such
// channel, so turning Consul on keeps the channels.
func (a *app) importChannels(ctx context.Context) {
	local, err := snapshot.New(a.catalog.Store()).Channels(ctx)
	if err != nil || len(local) == 0 {
		return
	}
	marker := filepath.Join(a.consulStateDir(), "imported.json")
	var imported []string
	if data, err := os.ReadFile(marker); err == nil {
		json.Unmarshal(data, &imported)
	}
	for _, ch := range local {
		if slices.Contains(imported, ch.Name) {
			continue
		}
		_, err := a.consul.chans.Update(ctx, ch.Name, true, func(kv *snapshot.Channel) error {
			if kv.Snapshot != "" || len(kv.History) > 0 {
				return errSkip
			}
			*kv = *ch
			return nil
		})
		switch {
		case err == nil:
			a.log.Info("channel copied from data_dir into Consul", "channel", ch.Name, "snapshot", ch.Snapshot)
		case !errors.Is(err, errSkip):
			a.log.Warn("could not copy channel from data_dir into Consul; will try at next start", "channel", ch.Name, "err", err)
			continue
		}
		imported = append(imported, ch.Name)
	}
	if data, err := json.Marshal(imported); err == nil {
		os.MkdirAll(filepath.Dir(marker), 0o755)
		os.WriteFile(marker, data, 0o644)
	}
}

// consulSchedule runs scheduled syncs while this replica holds the Consul
// lock PREFIX/leader; losing the lock cancels a running sync. The first
// sync of a term is due one interval after the latest snapshot, so a
// replica taking over from a dead leader catches up at once.
// It returns at once; consulServe's stop waits for it.
func (a *app) consulSchedule(ctx context.Context, run syncRun, every time.Duration) {
	st := a.consul
	opt := consul.LeaderOptions{ID: st.svc.ID, ServiceCheck: st.svc.CheckID()}
	st.wg.Add(1)
	go func() {
		defer st.wg.Done()
		st.client.Lead(ctx, opt, func(ctx context.Context) { a.leadSyncs(ctx, run, every) })
	}()
}

// leadSyncs is the leader's schedule; it returns when ctx ends.
func (a *app) leadSyncs(ctx context.Context, run syncRun, every time.Duration) {
	var lastTry time.Time
	for {
		due := lastTry.Add(every)
		if rec, err := a.catalog.Latest(ctx); err == nil && rec.Created.Add(every).After(due) {
			due = rec.Created.Add(every)
		}
		if err := sleepUntil(ctx, due, every); err != nil {
			return
		}
		lastTry = time.Now()
		id, err := run(ctx, nil)
		switch {
		case ctx.Err() != nil:
			a.log.Warn("scheduled sync cancelled: the lock was lost or serve is stopping", "err", err)
			return
		case err != nil:
			a.log.Warn("scheduled sync failed", "err", err)
		default:
			a.log.Info("scheduled sync done", "snapshot", id)
		}
	}
}

// sleepUntil waits until t, but never longer than limit.
func sleepUntil(ctx context.Context, t time.Time, limit time.Duration) error {
	d := min(time.Until(t), limit)
	if d <= 0 {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
