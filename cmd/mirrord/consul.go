package main

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mirrord/mirrord/internal/consul"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// openConsul connects the catalog's channels to Consul KV and builds the
// replica serve runs. It does not contact Consul.
func (a *app) openConsul() error {
	c, err := consul.New(consulOptions(a.cfg, a.log))
	if err != nil {
		return usageError{fmt.Errorf("%s: consul: %w", a.cfg.Path, err)}
	}
	cc := a.cfg.Consul
	stateDir := filepath.Join(a.cfg.DataDir, "state", "consul")
	local := snapshot.New(a.catalog.Store())
	var r *consul.Replica
	chans := c.Channels(consul.ChannelOptions{
		CacheFile: filepath.Join(stateDir, "channels.json"),
		OnChange:  func() { r.Changed() },
	})
	r = consul.NewReplica(consul.ReplicaOptions{
		Client: c, Catalog: a.catalog, Local: local, Channels: chans, StateDir: stateDir,
		Service: cc.Service, CheckInterval: consulCheckInterval(cc.CheckInterval.Duration), Version: version, Log: a.log,
	})
	a.catalog.SetChannels(chans)
	a.consul, a.consulClient = r, c
	return nil
}

// consulCheckInterval is the interval of the /healthz check Consul runs
// (consul.check_interval); MIRRORD_CONSUL_CHECK_INTERVAL overrides it.
func consulCheckInterval(configured time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv("MIRRORD_CONSUL_CHECK_INTERVAL")); err == nil && d > 0 {
		return d
	}
	return configured
}
