package consul

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// Service describes one replica in the catalog.
type Service struct {
	Name    string // the service name (config consul.service)
	ID      string // unique per replica
	Address string // "" lets Consul use the agent's node address
	Port    int
	// CheckURL is the HTTP health check's URL (the replica's /healthz).
	CheckURL      string
	CheckInterval time.Duration // default 10s
	Meta          map[string]string
}

// CheckID is the ID Consul gives the service's health check.
func (s Service) CheckID() string { return "service:" + s.ID }

// State is what a registration advertises that changes while serving.
type State struct {
	LatestSnapshot string // meta latest_snapshot
	// Channels maps each channel to the snapshot it points at: a tag
	// channel-<name> each, and meta channel-<name> = ID where the name
	// is a valid meta key (no '.'; at most maxChannelMeta of them).
	Channels map[string]string
}

// maxChannelMeta bounds the channel-<name> meta keys (Consul allows 64 in all).
const maxChannelMeta = 48

// RegisterOptions configures Register.
type RegisterOptions struct {
	// State returns the current state; it is polled every Every.
	State func(ctx context.Context) (State, error)
	// Every is how often the registration is checked (default 1s): the
	// state for changes, the agent for a lost registration (an agent
	// restarted without its data).
	Every time.Duration
}

// Register registers svc, keeps the registration current until ctx ends,
// then deregisters it. Registration failures are logged and retried: a
// replica keeps serving whether Consul is up or not.
func (c *Client) Register(ctx context.Context, svc Service, opt RegisterOptions) {
	if opt.Every <= 0 {
		opt.Every = time.Second
	}
	r := &registrar{c: c, svc: svc, opt: opt}
	t := time.NewTicker(opt.Every)
	defer t.Stop()
	for {
		r.tick(ctx)
		select {
		case <-ctx.Done():
			r.deregister()
			return
		case <-t.C:
		}
	}
}

type registrar struct {
	c       *Client
	svc     Service
	opt     RegisterOptions
	last    *api.AgentServiceRegistration // what the agent has, nil if unknown
	lastSt  State
	failing bool
}

func (r *registrar) tick(ctx context.Context) {
	st, err := r.opt.State(ctx)
	if err != nil {
		r.c.log.Warn("consul registration: reading state", "err", err)
		st = r.lastSt
	}
	want := r.registration(st)
	if r.last != nil && sameRegistration(r.last, want) {
		ok, err := r.present(ctx)
		if err == nil && ok {
			return
		}
		r.last = nil
		if err != nil {
			r.fail(err)
			return
		}
		r.c.log.Warn("consul agent lost this replica's registration; registering again", "id", r.svc.ID)
	}
	_, err = call(ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, r.c.api.Agent().ServiceRegisterOpts(want, api.ServiceRegisterOpts{}.WithContext(ctx))
	})
	if err != nil {
		r.fail(r.c.wrap(err, "registering service "+r.svc.ID))
		return
	}
	if r.failing || r.last == nil {
		r.c.log.Info("registered in consul", "service", r.svc.Name, "id", r.svc.ID, "latest_snapshot", st.LatestSnapshot, "tags", want.Tags)
	} else {
		r.c.log.Debug("consul registration updated", "id", r.svc.ID, "latest_snapshot", st.LatestSnapshot, "tags", want.Tags)
	}
	r.failing, r.last, r.lastSt = false, want, st
}

func (r *registrar) fail(err error) {
	if !r.failing {
		r.c.log.Warn("consul registration failed; serving goes on, retrying", "err", err)
	}
	r.failing = true
}

func (r *registrar) present(ctx context.Context) (bool, error) {
	svc, err := call(ctx, func(ctx context.Context) (*api.AgentService, error) {
		s, _, err := r.c.api.Agent().Service(r.svc.ID, query(ctx))
		return s, err
	})
	if se, ok := err.(api.StatusError); ok && se.Code == 404 {
		return false, nil
	}
	if err != nil {
		return false, r.c.wrap(err, "reading service "+r.svc.ID)
	}
	return svc != nil, nil
}

func (r *registrar) registration(st State) *api.AgentServiceRegistration {
	meta := maps.Clone(r.svc.Meta)
	if meta == nil {
		meta = map[string]string{}
	}
	meta["latest_snapshot"] = st.LatestSnapshot
	tags := make([]string, 0, len(st.Channels))
	for _, ch := range slices.Sorted(maps.Keys(st.Channels)) {
		tags = append(tags, "channel-"+ch)
		if !strings.Contains(ch, ".") && len(meta) < maxChannelMeta+len(r.svc.Meta)+1 {
			meta["channel-"+ch] = st.Channels[ch]
		}
	}
	every := r.svc.CheckInterval
	if every <= 0 {
		every = 10 * time.Second
	}
	return &api.AgentServiceRegistration{
		ID: r.svc.ID, Name: r.svc.Name, Address: r.svc.Address, Port: r.svc.Port, Tags: tags, Meta: meta,
		Check: &api.AgentServiceCheck{
			Name: "mirrord /healthz", HTTP: r.svc.CheckURL, Method: "GET",
			// A slow answer is not a dead replica (a dead one refuses the
			// connection at once), so the timeout does not shrink with
			// the interval.
			Interval: every.String(), Timeout: "5s",
			// Replicas killed without deregistering disappear from the
			// catalog after this (Consul's minimum).
			DeregisterCriticalServiceAfter: "1m",
		},
	}
}

func sameRegistration(a, b *api.AgentServiceRegistration) bool {
	return slices.Equal(a.Tags, b.Tags) && maps.Equal(a.Meta, b.Meta) && a.Address == b.Address && a.Port == b.Port
}

func (r *registrar) deregister() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.c.api.Agent().ServiceDeregisterOpts(r.svc.ID, query(ctx))
	if err != nil {
		r.c.log.Warn("consul deregistration failed; the catalog drops this replica after its check stays critical for 1m", "id", r.svc.ID, "err", err)
		return
	}
	r.c.log.Info("deregistered from consul", "id", r.svc.ID)
}

// ServiceID is the conventional replica ID: service-hostname-port.
func ServiceID(service, hostname string, port int) string {
	return fmt.Sprintf("%s-%s-%d", service, hostname, port)
}
