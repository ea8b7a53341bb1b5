package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mirrord/mirrord/internal/consul"
	"github.com/mirrord/mirrord/internal/deploy"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
)

// consulClientConfig is `client-config --consul`: it takes the nearest
// healthy replica from the catalog and the snapshot the channel is pinned
// to in KV (or the one given), and prints every source's client config for
// them, or with write installs it under root (apt .sources and mirrord's
// key, yum .repo, git insteadOf included from /etc/gitconfig).
func (a *app) consulClientConfig(ctx context.Context, w io.Writer, channel, snap string, write bool, root string) error {
	if a.consul == nil {
		return usageError{fmt.Errorf("client-config --consul: %s has no consul: section (add consul: {address: HOST:8500})", a.cfg.Path)}
	}
	c := a.consulClient
	insts, err := c.Healthy(ctx, a.cfg.Consul.Service)
	if err != nil {
		return err
	}
	if len(insts) == 0 {
		return fmt.Errorf("no healthy %q service in the Consul catalog at %s: is mirrord serve running with consul: configured? %w",
			a.cfg.Consul.Service, c.Addr(), snapshot.ErrNotFound)
	}
	inst := insts[0]
	id, why, err := a.consulPin(ctx, inst, channel, snap)
	if err != nil {
		return err
	}
	srcs, err := a.sources(a.cfg)
	if err != nil {
		return err
	}
	base := func(s source.Source) string { return inst.URL() + "/snapshots/" + id + "/" + source.Key(s) }
	keyURL := inst.URL() + "/keys/mirrord.asc"
	header := fmt.Sprintf("# mirrord %s from replica %s (%s); %s\n", id, inst.ID, inst.URL(), why)
	if !write {
		fmt.Fprint(w, header+source.ClientConfigText(srcs, base, keyURL))
		return nil
	}
	plan := source.PlanClientFiles(srcs, base, keyURL)
	return deploy.Install(ctx, w, root, header, plan, func(ctx context.Context) ([]byte, error) {
		key, code, err := httpGet(ctx, keyURL)
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("status %d", code)
		}
		if err != nil {
			return nil, fmt.Errorf("fetching mirrord's signing key from %s: %w", keyURL, err)
		}
		return key, nil
	})
}

// consulPin picks the snapshot by snapshot.Pick, from Consul KV and the
// replica's latest snapshot; why says which rule chose it.
func (a *app) consulPin(ctx context.Context, inst consul.Instance, channel, snap string) (id, why string, err error) {
	c := a.consulClient
	if snap != "" {
		if err := checkRemoteSnapshot(ctx, inst.URL(), snap); err != nil {
			return "", "", err
		}
	}
	t, err := snapshot.Pick(ctx, snapshot.TargetSource{
		Channel: c.Pin,
		Latest: func(context.Context) (string, error) {
			if id := inst.Meta["latest_snapshot"]; id != "" {
				return id, nil
			}
			return "", fmt.Errorf("replica %s has no snapshot yet: %w", inst.ID, snapshot.ErrNotFound)
		},
	}, channel, snap)
	if err != nil {
		return "", "", err
	}
	if t.Channel != "" {
		t.Why += " pinned in Consul KV " + c.ChannelKey(t.Channel)
	}
	return t.Snapshot, t.Why, nil
}

func checkRemoteSnapshot(ctx context.Context, base, id string) error {
	if _, err := snapshot.ParseID(id); err != nil {
		return err
	}
	body, code, err := httpGet(ctx, base+"/api/v1/snapshots/"+id)
	switch {
	case err != nil:
		return err
	case code == http.StatusNotFound:
		return fmt.Errorf("snapshot %s: %s has no such snapshot: %w", id, base, snapshot.ErrNotFound)
	case code != http.StatusOK:
		return fmt.Errorf("snapshot %s: %s answered %d: %s", id, base, code, strings.TrimSpace(string(body)))
	}
	return nil
}

func httpGet(ctx context.Context, url string) ([]byte, int, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return body, resp.StatusCode, err
}
