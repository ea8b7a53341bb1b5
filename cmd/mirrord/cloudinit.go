package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mirrord/mirrord/internal/deploy"
	"github.com/mirrord/mirrord/internal/snapshot"
)

func newCloudInitCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cloud-init mirror|node",
		Short: "Print #cloud-config user-data for the mirror VM or a node (the Heat stacks in deploy/heat)",
		Args:  args(cobra.NoArgs),
	}
	cmd.AddCommand(newCloudInitMirrorCmd(g), newCloudInitNodeCmd(g))
	return cmd
}

func newCloudInitMirrorCmd(g *globals) *cobra.Command {
	var m deploy.Mirror
	cmd := &cobra.Command{
		Use:   "mirror [--config F]",
		Short: "User-data that turns a fresh VM into a mirror of the config's sources",
		Long: `cloud-init mirror prints the user-data deploy/heat/mirror.yaml builds: it mounts
the data volume at /var/lib/mirrord (formatting it only when empty), installs the
mirrord package, writes /etc/mirrord/mirrord.yaml (the sources of --config, with
data_dir, listen, public_url, auth and consul set for the VM) and a generated
token, enables the unit, runs the first sync and promotes it to --channel.
Files the sources name (apt keyring, yum gpgkey, git repos_file) must exist
on the VM too: the image's keyrings do; inline git repos under git.repos.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := os.ReadFile(g.config)
			if err != nil {
				return usageError{fmt.Errorf("cloud-init mirror: reading the sources from %w", err)}
			}
			srcs, dropped, err := deploy.SourcesOf(data)
			if err != nil {
				return usageError{fmt.Errorf("cloud-init mirror: %s: %w", g.config, err)}
			}
			m.Sources = srcs
			out, err := m.UserData()
			if err != nil {
				return usageError{fmt.Errorf("cloud-init mirror: %w", err)}
			}
			if strings.Contains(string(srcs), "repos_file:") {
				fmt.Fprintf(g.stderr, "cloud-init mirror: %s names a git repos_file: the VM needs that file at the same path (or list the repos under git.repos)\n", g.config)
			}
			if len(dropped) > 0 {
				fmt.Fprintf(g.stderr, "cloud-init mirror: not copied from %s (the VM sets them): %s\n", g.config, strings.Join(dropped, ", "))
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&m.Channel, "channel", "production", "channel the first snapshot is promoted to")
	f.StringVar(&m.PackageURL, "package-url", "", "URL of the mirrord .deb or .rpm (default: the mirrord package of the VM's repositories)")
	f.StringVar(&m.PublicURL, "public-url", "", "URL nodes reach the mirror at (default: http://<VM's first address>:8080)")
	f.StringVar(&m.Device, "device", "", "block device of the data volume (default: none, data on the root disk)")
	f.StringVar(&m.VolumeID, "volume-id", "", "Cinder volume ID of the data volume (found under /dev/disk/by-id)")
	f.StringVar(&m.ConsulJoin, "consul-join", "", "Consul address to join and register with")
	f.StringVar(&m.Listen, "listen", deploy.DefaultListen, "address mirrord listens on")
	return cmd
}

func newCloudInitNodeCmd(g *globals) *cobra.Command {
	var channel, mirror string
	n := deploy.Node{}
	cmd := &cobra.Command{
		Use:   "node --channel C [--mirror URL]",
		Short: "User-data that points a node's apt, yum and git at the mirror and clones the git repos",
		Long: `cloud-init node prints the user-data deploy/heat/node.yaml builds: it downloads
MIRROR/channels/C/bootstrap.sh and runs it with --clone DIR. --mirror defaults to
the config's public_url.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if channel == "" {
				return usageError{fmt.Errorf("cloud-init node: --channel is required")}
			}
			if mirror == "" {
				a, err := g.open()
				if err != nil {
					return err
				}
				mirror = a.cfg.PublicURL
			}
			n.BootstrapURL = strings.TrimSuffix(mirror, "/") + "/channels/" + channel + "/bootstrap.sh"
			out, err := n.UserData()
			if err != nil {
				return usageError{fmt.Errorf("cloud-init node: %w", err)}
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "", "channel the node follows")
	cmd.Flags().StringVar(&mirror, "mirror", "", "the mirror's URL (default: the config's public_url)")
	cmd.Flags().StringVar(&n.CloneDir, "clone", deploy.DefaultCloneDir, "clone every git repo of the snapshot into this directory ('' for none)")
	return cmd
}

// bootstrapScript renders the bootstrap script of rec for the clients of
// root ("/snapshots/ID" or "/channels/C"), from the configured sources.
func (a *app) bootstrapScript(_ context.Context, rec *snapshot.Record, root string) ([]byte, error) {
	srcs, err := a.sources(a.cfg)
	if err != nil {
		return nil, err
	}
	base := strings.TrimSuffix(a.cfg.PublicURL, "/")
	return deploy.Bootstrap{Root: base + root, KeyURL: base + "/keys/mirrord.asc", Record: rec, Sources: srcs, Version: version}.Script()
}
