package main

import (
	"cmp"
	"errors"
	"os"

	"github.com/spf13/cobra"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/hostinit"
)

func newInitCmd(g *globals) *cobra.Command {
	var o hostinit.Options
	var all bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a starting mirrord.yaml from this host's apt sources and yum repos",
		Long: `init reads the host's /etc/apt/sources.list, /etc/apt/sources.list.d/*.list and
*.sources (with their Signed-By keyrings) and /etc/yum.repos.d/*.repo, and writes
a mirrord.yaml that mirrors what this build node uses. By default each source
is filtered to a few packages with their dependencies, so the first sync is
quick; --all mirrors everything.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Output == "" {
				o.Output = cmp.Or(g.config, os.Getenv("MIRRORD_CONFIG"), config.DefaultPaths[0])
			}
			if all {
				o.Filter = nil
			}
			err := hostinit.Run(g.stdout, o)
			if errors.Is(err, hostinit.ErrExists) {
				return usageError{err}
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&o.Output, "output", "o", "", "file to write (default: the --config path, else $MIRRORD_CONFIG, else ./mirrord.yaml)")
	cmd.Flags().StringVar(&o.Root, "root", "/", "read the apt and yum configuration below this directory")
	cmd.Flags().StringSliceVar(&o.Filter, "filter", hostinit.DefaultFilter(), "packages (with their dependencies) each source is filtered to")
	cmd.Flags().BoolVar(&all, "all", false, "mirror every package (no filter)")
	cmd.Flags().BoolVar(&o.Force, "force", false, "overwrite an existing file")
	return cmd
}
