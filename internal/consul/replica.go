package consul

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mirrord/mirrord/internal/atomicfile"
	"github.com/mirrord/mirrord/internal/ctxtime"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// ReplicaOptions configure a Replica.
type ReplicaOptions struct {
	Client *Client
	// Catalog is the catalog whose channels live in Consul (its channel
	// store is Channels); Local is the same store with the channels it
	// kept in data_dir before consul: was configured (imported once).
	Catalog, Local *snapshot.Catalog
	Channels       *Channels
	// StateDir keeps what the replica knows between restarts.
	StateDir string
	// Service is the service name (consul.service); CheckInterval the
	// /healthz check's (it bounds how fast another replica takes over
	// the schedule); Version goes into the registration's meta.
	Service       string
	CheckInterval time.Duration
	Version       string
	Log           *slog.Logger
}

// Replica is what a `mirrord serve` process does in Consul: it follows
// channel changes (calling the OnChange hook), registers itself with a
// /healthz check, publishes snapshot summaries, copies data_dir channels
// into KV once, and runs scheduled syncs only while it holds the leader
// lock. It implements service.Replica.
type Replica struct {
	opt      ReplicaOptions
	onChange atomic.Pointer[func()]
	svc      Service
	wg       sync.WaitGroup
}

// NewReplica returns a replica; it does not contact Consul.
func NewReplica(opt ReplicaOptions) *Replica {
	if opt.Log == nil {
		opt.Log = slog.New(slog.DiscardHandler)
	}
	return &Replica{opt: opt}
}

// OnChange sets the function called when the channel watch sees a change
// (serve refreshes its view). Safe to call at any time.
func (r *Replica) OnChange(f func()) { r.onChange.Store(&f) }

// Changed calls the OnChange hook; ChannelOptions.OnChange should call it.
func (r *Replica) Changed() {
	if f := r.onChange.Load(); f != nil {
		(*f)()
	}
}

// Start implements service.Replica: it copies data_dir channels into KV,
// starts the channel watch, registers the replica listening on addr and
// publishes summaries until ctx ends. stop waits for all of it (and for
// Lead) to end after ctx is cancelled.
func (r *Replica) Start(ctx context.Context, addr string) (stop func(), err error) {
	svc, err := r.service(addr)
	if err != nil {
		return nil, err
	}
	r.svc = svc
	r.importChannels(ctx)
	if err := r.opt.Channels.Start(ctx); err != nil {
		r.opt.Log.Warn("channels unavailable until Consul answers", "err", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	r.wg.Add(2)
	go func() {
		defer r.wg.Done()
		r.opt.Client.Register(rctx, svc, RegisterOptions{State: r.advertised})
	}()
	go func() {
		defer r.wg.Done()
		r.publishSummaries(rctx)
	}()
	return func() { cancel(); r.wg.Wait() }, nil
}

// service describes this replica: ID service-hostname-port, the listener's
// address ("" when it listens on every address, so Consul uses the
// node's), a check on /healthz.
func (r *Replica) service(addr string) (Service, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return Service{}, err
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return Service{}, fmt.Errorf("listener port %q: %w", portStr, err)
	}
	checkHost := host
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() || host == "" {
		host, checkHost = "", "127.0.0.1"
	}
	hostname, err := os.Hostname()
	if err != nil {
		hostname = "localhost"
	}
	name := r.opt.Service
	return Service{
		Name: name, ID: ServiceID(name, hostname, port), Address: host, Port: port,
		CheckURL:      "http://" + net.JoinHostPort(checkHost, portStr) + "/healthz",
		CheckInterval: r.opt.CheckInterval,
		Meta:          map[string]string{"version": r.opt.Version},
	}, nil
}

// advertised is what the registration shows: the latest snapshot and
// where each channel points.
func (r *Replica) advertised(ctx context.Context) (State, error) {
	var st State
	rec, err := r.opt.Catalog.Latest(ctx)
	if err != nil && !errors.Is(err, snapshot.ErrNotFound) {
		return st, err
	}
	if rec != nil {
		st.LatestSnapshot = rec.ID
	}
	chans, err := r.opt.Catalog.Channels(ctx)
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
func (r *Replica) publishSummaries(ctx context.Context) {
	var done []string
	failing := false
	for {
		ids, err := r.opt.Catalog.IDs(ctx)
		if err == nil && !slices.Equal(ids, done) {
			err = r.publishOnce(ctx)
			if err == nil {
				done = ids
			}
		}
		if err != nil && !failing && ctx.Err() == nil {
			r.opt.Log.Warn("publishing snapshot summaries to Consul failed; retrying", "err", err)
		}
		failing = err != nil
		if ctxtime.Sleep(ctx, time.Second) != nil {
			return
		}
	}
}

func (r *Replica) publishOnce(ctx context.Context) error {
	recs, err := r.opt.Catalog.List(ctx)
	if err != nil {
		return err
	}
	added, removed, err := r.opt.Client.PublishSnapshots(ctx, recs)
	if added+removed > 0 {
		r.opt.Log.Info("snapshot summaries published to Consul", "added", added, "removed", removed)
	}
	return err
}

// errSkip leaves a channel as it is in importChannels.
var errSkip = errors.New("already in Consul")

// importChannels copies channels kept in data_dir (before consul: was
// configured) into Consul KV, each once and only where KV has no such
// channel, so turning Consul on keeps the channels.
func (r *Replica) importChannels(ctx context.Context) {
	local, err := r.opt.Local.Channels(ctx)
	if err != nil || len(local) == 0 {
		return
	}
	marker := filepath.Join(r.opt.StateDir, "imported.json")
	var imported []string
	if data, err := os.ReadFile(marker); err == nil {
		json.Unmarshal(data, &imported)
	}
	for _, ch := range local {
		if slices.Contains(imported, ch.Name) {
			continue
		}
		_, err := r.opt.Channels.Update(ctx, ch.Name, true, func(kv *snapshot.Channel) error {
			if kv.Snapshot != "" || len(kv.History) > 0 {
				return errSkip
			}
			*kv = *ch
			return nil
		})
		switch {
		case err == nil:
			r.opt.Log.Info("channel copied from data_dir into Consul", "channel", ch.Name, "snapshot", ch.Snapshot)
		case !errors.Is(err, errSkip):
			r.opt.Log.Warn("could not copy channel from data_dir into Consul; will try at next start", "channel", ch.Name, "err", err)
			continue
		}
		imported = append(imported, ch.Name)
	}
	if data, err := json.Marshal(imported); err == nil {
		atomicfile.Write(marker, data, 0o644, nil)
	}
}

// Lead implements service.Replica: it runs sync on schedule while this
// replica holds the Consul lock PREFIX/leader; losing the lock cancels a
// running sync. The first sync of a term is due one interval after the
// latest snapshot (or the last sync), so a replica taking over from a dead
// leader catches up at once. Call it after Start.
func (r *Replica) Lead(ctx context.Context, sync func(ctx context.Context) (string, error), interval func() time.Duration) {
	opt := LeaderOptions{ID: r.svc.ID, ServiceCheck: r.svc.CheckID()}
	r.wg.Add(1)
	defer r.wg.Done()
	r.opt.Client.Lead(ctx, opt, func(ctx context.Context) { r.leadSyncs(ctx, sync, interval) })
}

// leadSyncs is the leader's schedule; it returns when ctx ends.
func (r *Replica) leadSyncs(ctx context.Context, sync func(ctx context.Context) (string, error), interval func() time.Duration) {
	var lastTry time.Time
	for {
		every := interval()
		if every <= 0 {
			if ctxtime.Sleep(ctx, time.Minute) != nil { // re-read after a reload
				return
			}
			continue
		}
		due := lastTry.Add(every)
		if ls, err := r.opt.Catalog.LastSync(ctx); err == nil && ls.Time.Add(every).After(due) {
			due = ls.Time.Add(every)
		}
		if ctxtime.Sleep(ctx, min(time.Until(due), every)) != nil {
			return
		}
		if time.Now().Before(due) {
			continue // interval changed meanwhile: recompute
		}
		lastTry = time.Now()
		id, err := sync(ctx)
		switch {
		case ctx.Err() != nil:
			r.opt.Log.Warn("scheduled sync cancelled: the lock was lost or serve is stopping", "err", err)
			return
		case err != nil:
			r.opt.Log.Warn("scheduled sync failed", "err", err)
		default:
			r.opt.Log.Info("scheduled sync done", "snapshot", id)
		}
	}
}
