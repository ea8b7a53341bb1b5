package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mirrord/mirrord/internal/atomicfile"
	"github.com/mirrord/mirrord/internal/consul"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
)

// clientSnippet is one source's client config.
type clientSnippet struct {
	kind, name, text string
}

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
	base := inst.URL()
	srcs, err := a.sources(a.cfg)
	if err != nil {
		return err
	}
	var snippets []clientSnippet
	for _, s := range srcs {
		if cc, ok := s.(source.ClientConfig); ok {
			text := cc.ClientConfig(base+"/snapshots/"+id+"/"+s.Kind()+"/"+s.Name(), base+"/keys/mirrord.asc")
			snippets = append(snippets, clientSnippet{s.Kind(), s.Name(), text})
		}
	}
	header := fmt.Sprintf("# mirrord %s from replica %s (%s); %s\n", id, inst.ID, base, why)
	if !write {
		var texts []string
		for _, sn := range snippets {
			texts = append(texts, sn.text)
		}
		fmt.Fprint(w, header+strings.Join(texts, "\n"))
		return nil
	}
	return writeClientFiles(ctx, w, root, base, header, snippets)
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

// Where --write puts each kind's config, relative to the root.
const (
	aptSourcesDir = "etc/apt/sources.list.d"
	aptKeyFile    = "etc/apt/keyrings/mirrord.asc"
	yumReposDir   = "etc/yum.repos.d"
	gitInclude    = "etc/mirrord/gitconfig"
	gitSystem     = "etc/gitconfig"
)

// writeClientFiles installs the snippets under root, each file replaced
// atomically and only when its content changed, and reports what it did.
func writeClientFiles(ctx context.Context, w io.Writer, root, base, header string, snippets []clientSnippet) error {
	files := map[string][]byte{}
	var git []string
	for _, sn := range snippets {
		switch sn.kind {
		case "apt":
			files[filepath.Join(aptSourcesDir, "mirrord-"+sn.name+".sources")] = []byte(header + sn.text)
		case "yum":
			files[filepath.Join(yumReposDir, "mirrord-"+sn.name+".repo")] = []byte(header + sn.text)
		case "git":
			git = append(git, sn.text)
		default:
			fmt.Fprintf(w, "# not written (%s sources have no client file):\n%s", sn.kind, sn.text)
		}
	}
	if len(git) > 0 {
		files[gitInclude] = []byte(header + strings.Join(git, ""))
	}
	if slices.ContainsFunc(snippets, func(s clientSnippet) bool { return s.kind == "apt" }) {
		key, code, err := httpGet(ctx, base+"/keys/mirrord.asc")
		if err == nil && code != http.StatusOK {
			err = fmt.Errorf("status %d", code)
		}
		if err != nil {
			return fmt.Errorf("fetching mirrord's signing key from %s/keys/mirrord.asc: %w", base, err)
		}
		files[aptKeyFile] = key
	}
	for _, rel := range slices.Sorted(maps.Keys(files)) {
		if err := installFile(w, filepath.Join(root, rel), files[rel]); err != nil {
			return err
		}
	}
	if len(git) > 0 {
		return includeGitConfig(w, filepath.Join(root, gitSystem), filepath.Join(root, gitInclude))
	}
	return nil
}

func installFile(w io.Writer, path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		fmt.Fprintf(w, "unchanged %s\n", path)
		return nil
	}
	if err := atomicfile.Write(path, data, 0o644, nil); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	fmt.Fprintf(w, "wrote %s\n", path)
	return nil
}

// includeGitConfig makes the system gitconfig include the mirrord one.
func includeGitConfig(w io.Writer, system, include string) error {
	old, err := os.ReadFile(system)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	line := "\tpath = " + include + "\n"
	if bytes.Contains(old, []byte(line)) {
		return nil
	}
	data := append(old, []byte("[include]\n"+line)...)
	if len(old) > 0 && old[len(old)-1] != '\n' {
		data = append(append(old, '\n'), []byte("[include]\n"+line)...)
	}
	if err := atomicfile.Write(system, data, 0o644, nil); err != nil {
		return fmt.Errorf("writing %s: %w", system, err)
	}
	fmt.Fprintf(w, "included %s from %s\n", include, system)
	return nil
}
