// Package consul makes several mirrord replicas act as one through Consul,
// and lets nodes find the mirror and the snapshot they must use.
//
// KV layout under the configured prefix (default "mirrord/"), DESIGN.md
// "Consul":
//
//	PREFIX/channels/<channel>           snapshot ID, plain text (hiera-consul, consul-template)
//	PREFIX/channels/<channel>/history   the channel with its move log (JSON, snapshot.Channel)
//	PREFIX/snapshots/<ID>               JSON Summary of a snapshot
//	PREFIX/leader                       the lock whose holder runs scheduled syncs
//
// A channel's pointer and history change together in one transaction with
// check-and-set on both, retried when another writer got there first, so
// concurrent promotions are all recorded, in order.
package consul

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/consul/api"
)

// ErrUnavailable is wrapped by errors that mean Consul could not be
// reached or could not answer (no leader): retrying later may succeed.
var ErrUnavailable = errors.New("consul unavailable")

// DefaultPrefix is the KV prefix when none is configured.
const DefaultPrefix = "mirrord/"

// requestTimeout bounds every non-blocking call to Consul.
const requestTimeout = 10 * time.Second

// Options configures a Client.
type Options struct {
	// Address is host:port or an http(s) URL of a Consul agent; "" uses
	// CONSUL_HTTP_ADDR or 127.0.0.1:8500.
	Address    string
	Token      string
	Datacenter string
	// Prefix is the KV prefix; "" means DefaultPrefix. A missing trailing
	// slash is added.
	Prefix string
	Logger *slog.Logger
}

// Client talks to one Consul agent. Safe for concurrent use.
type Client struct {
	api    *api.Client
	addr   string
	prefix string
	log    *slog.Logger
}

// New returns a client; it does not contact Consul.
func New(opt Options) (*Client, error) {
	cfg := api.DefaultConfig()
	if opt.Address != "" {
		cfg.Address = opt.Address
		if u, err := url.Parse(opt.Address); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
			cfg.Address, cfg.Scheme = u.Host, u.Scheme
		}
	}
	if opt.Token != "" {
		cfg.Token = opt.Token
	}
	if opt.Datacenter != "" {
		cfg.Datacenter = opt.Datacenter
	}
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("consul at %s: %w", cfg.Address, err)
	}
	prefix := opt.Prefix
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Client{api: c, addr: cfg.Address, prefix: prefix, log: log.With("consul", cfg.Address)}, nil
}

// Addr is the agent's address, for messages.
func (c *Client) Addr() string { return c.addr }

// API returns the underlying Consul client.
func (c *Client) API() *api.Client { return c.api }

// Key paths.

// ChannelKey is the KV key holding channel's snapshot ID.
func (c *Client) ChannelKey(channel string) string { return c.prefix + "channels/" + channel }

// HistoryKey is the KV key holding channel's JSON record with history.
func (c *Client) HistoryKey(channel string) string { return c.ChannelKey(channel) + "/history" }

// SnapshotKey is the KV key holding snapshot id's JSON summary.
func (c *Client) SnapshotKey(id string) string { return c.prefix + "snapshots/" + id }

// LeaderKey is the KV key of the scheduled-sync lock.
func (c *Client) LeaderKey() string { return c.prefix + "leader" }

func (c *Client) channelsPrefix() string  { return c.prefix + "channels/" }
func (c *Client) snapshotsPrefix() string { return c.prefix + "snapshots/" }

// query returns options for one non-blocking read bound to ctx.
func query(ctx context.Context) *api.QueryOptions {
	return (&api.QueryOptions{}).WithContext(ctx)
}

func write(ctx context.Context) *api.WriteOptions {
	return (&api.WriteOptions{}).WithContext(ctx)
}

// call runs fn with a request timeout.
func call[T any](ctx context.Context, fn func(ctx context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return fn(ctx)
}

// unreachable reports whether err means Consul could not answer at all:
// connection failures, timeouts, no leader, 5xx from the agent.
func unreachable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var se api.StatusError
	if errors.As(err, &se) {
		return se.Code >= http.StatusInternalServerError
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "No cluster leader") || strings.Contains(s, "connection refused")
}

// wrap annotates err with what failed; errors that mean Consul is down
// become an *UnavailableError.
func (c *Client) wrap(err error, what string) error {
	if err == nil {
		return nil
	}
	if unreachable(err) && !errors.Is(err, ErrUnavailable) {
		return &UnavailableError{Addr: c.addr, What: what, Err: err}
	}
	return fmt.Errorf("consul at %s: %s: %w", c.addr, what, err)
}

// UnavailableError is a failure to reach Consul (it wraps ErrUnavailable
// and the cause).
type UnavailableError struct {
	Addr string // the agent's address
	What string // what could not be done
	Err  error
}

func (e *UnavailableError) Error() string {
	return fmt.Sprintf("consul at %s unreachable: %s: %v", e.Addr, e.What, e.Err)
}

// Unwrap returns ErrUnavailable and the cause.
func (e *UnavailableError) Unwrap() []error { return []error{ErrUnavailable, e.Err} }
