package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mirrord/mirrord/internal/gitcache"
	"github.com/mirrord/mirrord/internal/snapshot"
)

func newReposYAMLCmd(g *globals) *cobra.Command {
	var channel, snap string
	cmd := &cobra.Command{
		Use:   "repos-yaml [--channel C | --snapshot ID]",
		Short: "Print a snapshot's repos.yaml with every source rewritten to the mirror",
		Long: `repos-yaml prints the repos.yaml (git.repos_file) the chosen snapshot was
made from, with the source of every repository set to its clone URL on this
mirror, for stacktira's cloner and other tools that read that file. Groups,
variables, dest, ref and comments are kept. These are the bytes the server
answers at /snapshots/ID/git/repos.yaml (or /channels/C/git/repos.yaml). A
repository the snapshot does not have keeps its upstream source (with a
warning on standard error). A config without a repos_file stores its inline
git.repos as a repos.yaml with one group, "mirrord".`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if channel != "" && snap != "" {
				return usageError{fmt.Errorf("give --channel or --snapshot, not both")}
			}
			a, err := g.open()
			if err != nil {
				return err
			}
			t, rec, err := a.clientTarget(cmd.Context(), channel, snap)
			if err != nil {
				return err
			}
			out, err := a.reposYAML(cmd.Context(), t.Prefix(a.cfg.PublicURL), rec, g)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&channel, "channel", "", "point sources at this channel (default: production if it exists, else the latest snapshot)")
	cmd.Flags().StringVar(&snap, "snapshot", "", "pin sources to this snapshot ID")
	return cmd
}

// reposYAML is the repos.yaml rec was made from, every repository rec has
// cloned from root: the bytes the server answers at root/git/repos.yaml.
func (a *app) reposYAML(ctx context.Context, root string, rec *snapshot.Record, g *globals) ([]byte, error) {
	out, missing, err := gitcache.ReposFile(ctx, a.catalog, rec, root)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		fmt.Fprintf(g.stderr, "mirrord: warning: snapshot %s has no git/%s; kept the upstream source (run mirrord sync)\n", rec.ID, strings.Join(missing, ", git/"))
	}
	return out, nil
}
