package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
)

func newClientConfigCmd(g *globals) *cobra.Command {
	var channel, snap string
	cmd := &cobra.Command{
		Use:   "client-config [--channel C | --snapshot ID]",
		Short: "Print client configuration for the mirror (sources.list, .repo, git insteadOf, file URLs)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if channel != "" && snap != "" {
				return usageError{fmt.Errorf("give --channel or --snapshot, not both")}
			}
			a, err := g.open()
			if err != nil {
				return err
			}
			root, err := a.clientRoot(cmd, channel, snap)
			if err != nil {
				return err
			}
			srcs, err := a.sources()
			if err != nil {
				return err
			}
			keyURL := a.cfg.PublicURL + "/keys/mirrord.asc"
			var out []string
			for _, s := range srcs {
				if cc, ok := s.(source.ClientConfig); ok {
					out = append(out, cc.ClientConfig(root+"/"+s.Kind()+"/"+s.Name(), keyURL))
				}
			}
			fmt.Fprint(g.stdout, strings.Join(out, "\n"))
			return nil
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "", "point clients at this channel (default: production if it exists, else the latest snapshot)")
	cmd.Flags().StringVar(&snap, "snapshot", "", "pin clients to this snapshot ID")
	return cmd
}

// clientRoot is the URL prefix (".../channels/C" or ".../snapshots/ID") the
// clients should use.
func (a *app) clientRoot(cmd *cobra.Command, channel, snap string) (string, error) {
	ctx := cmd.Context()
	base := a.cfg.PublicURL
	switch {
	case snap != "":
		if _, err := a.catalog.Get(ctx, snap); err != nil {
			return "", err
		}
		return base + "/snapshots/" + snap, nil
	case channel != "":
		if _, err := a.catalog.Channel(ctx, channel); err != nil {
			return "", err
		}
		return base + "/channels/" + channel, nil
	}
	if _, err := a.catalog.Channel(ctx, "production"); err == nil {
		return base + "/channels/production", nil
	}
	rec, err := a.catalog.Latest(ctx)
	if err != nil {
		return "", fmt.Errorf("no channel given and %w; run mirrord sync first", err)
	}
	return base + "/snapshots/" + rec.ID, nil
}

var _ = snapshot.ErrNotFound
