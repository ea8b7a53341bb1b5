package consul

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/hashicorp/consul/api"

	"github.com/mirrord/mirrord/internal/snapshot"
)

// Instance is one healthy mirrord replica found in the catalog.
type Instance struct {
	ID      string
	Node    string
	Address string // the service address, else the node's
	Port    int
	Tags    []string
	Meta    map[string]string
}

// URL is the replica's base URL, as the catalog gives it.
func (i Instance) URL() string {
	return "http://" + net.JoinHostPort(i.Address, strconv.Itoa(i.Port))
}

// Channels lists the channels the replica advertises (tags channel-<name>).
func (i Instance) Channels() []string {
	var out []string
	for _, t := range i.Tags {
		if name, ok := strings.CutPrefix(t, "channel-"); ok {
			out = append(out, name)
		}
	}
	return out
}

// Healthy returns the replicas of service whose checks all pass, nearest to
// the local agent first.
func (c *Client) Healthy(ctx context.Context, service string) ([]Instance, error) {
	entries, err := call(ctx, func(ctx context.Context) ([]*api.ServiceEntry, error) {
		q := &api.QueryOptions{Near: "_agent"}
		e, _, err := c.api.Health().Service(service, "", true, q.WithContext(ctx))
		return e, err
	})
	if err != nil {
		return nil, c.wrap(err, "looking up service "+service)
	}
	out := make([]Instance, 0, len(entries))
	for _, e := range entries {
		addr := e.Service.Address
		if addr == "" {
			addr = e.Node.Address
		}
		out = append(out, Instance{ID: e.Service.ID, Node: e.Node.Node, Address: addr, Port: e.Service.Port, Tags: e.Service.Tags, Meta: e.Service.Meta})
	}
	return out, nil
}

// Pin returns the snapshot ID channel points at, read from KV as
// hiera-consul and consul-template read it. The error wraps
// snapshot.ErrNotFound when the key is absent.
func (c *Client) Pin(ctx context.Context, channel string) (string, error) {
	pair, err := call(ctx, func(ctx context.Context) (*api.KVPair, error) {
		p, _, err := c.api.KV().Get(c.ChannelKey(channel), query(ctx))
		return p, err
	})
	if err != nil {
		return "", c.wrap(err, "reading "+c.ChannelKey(channel))
	}
	if pair == nil {
		return "", fmt.Errorf("channel %q: no key %s in Consul: %w", channel, c.ChannelKey(channel), snapshot.ErrNotFound)
	}
	id := strings.TrimSpace(string(pair.Value))
	if _, err := snapshot.ParseID(id); err != nil {
		return "", fmt.Errorf("consul key %s: %w", c.ChannelKey(channel), err)
	}
	return id, nil
}
