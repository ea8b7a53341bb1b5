package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
)

func newClientConfigCmd(g *globals) *cobra.Command {
	var channel, snap, writeRoot, format string
	var useConsul, write bool
	cmd := &cobra.Command{
		Use:   "client-config [--channel C | --snapshot ID] [--consul [--write]] [--format sh]",
		Short: "Print client configuration for the mirror (sources.list, .repo, git insteadOf, file URLs)",
		Long: `client-config prints the apt, yum, git and file client configuration of every
configured source. With --consul it runs on a node: it finds a healthy mirrord
replica in the Consul catalog and the snapshot the channel is pinned to in
Consul KV, and with --write installs the files (under --root).`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if channel != "" && snap != "" {
				return usageError{fmt.Errorf("give --channel or --snapshot, not both")}
			}
			if format != "text" && format != "sh" {
				return usageError{fmt.Errorf("--format %q: want text or sh", format)}
			}
			if format == "sh" && useConsul {
				return usageError{fmt.Errorf("--format sh does not go with --consul (a node fetches MIRROR/channels/C/bootstrap.sh instead)")}
			}
			if write && !useConsul {
				return usageError{fmt.Errorf("--write needs --consul")}
			}
			a, err := g.open()
			if err != nil {
				return err
			}
			if useConsul {
				return a.consulClientConfig(cmd.Context(), g.stdout, channel, snap, write, writeRoot)
			}
			t, rec, err := a.clientTarget(cmd.Context(), channel, snap)
			if err != nil {
				return err
			}
			root := t.Prefix(a.cfg.PublicURL)
			if format == "sh" {
				script, err := a.bootstrapScript(cmd.Context(), rec, t.Prefix(""))
				if err != nil {
					return err
				}
				_, err = g.stdout.Write(script)
				return err
			}
			srcs, err := a.sources(a.cfg)
			if err != nil {
				return err
			}
			fmt.Fprint(g.stdout, source.ClientConfigText(srcs, source.Under(root), a.cfg.PublicURL+"/keys/mirrord.asc"))
			return nil
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "", "point clients at this channel (default: production if it exists, else the latest snapshot)")
	cmd.Flags().StringVar(&snap, "snapshot", "", "pin clients to this snapshot ID")
	cmd.Flags().BoolVar(&useConsul, "consul", false, "find a healthy replica and the channel's pinned snapshot in Consul")
	cmd.Flags().BoolVar(&write, "write", false, "with --consul: write the apt/yum/git files instead of printing them")
	cmd.Flags().StringVar(&format, "format", "text", "text (snippets) or sh (the node bootstrap script served at .../bootstrap.sh)")
	cmd.Flags().StringVar(&writeRoot, "root", "/", "with --write: install the files under this directory")
	return cmd
}

// clientTarget is what clients should use (snapshot.Pick: the snapshot
// given, else the channel, else production, else the latest) and the
// record it serves now. The one rule for client-config, its --format sh
// and repos-yaml.
func (a *app) clientTarget(ctx context.Context, channel, snap string) (snapshot.Target, *snapshot.Record, error) {
	t, err := snapshot.Pick(ctx, a.catalog.Targets(), channel, snap)
	if err != nil {
		return t, nil, err
	}
	rec, err := a.catalog.Get(ctx, t.Snapshot)
	return t, rec, err
}
