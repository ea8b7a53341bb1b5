package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mirrord/mirrord/internal/progress"
)

func newSyncCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "sync [KIND/NAME...]",
		Short: "Fetch and verify every source (or those named), then write one new snapshot and print its ID",
		Long: `sync fetches every configured source (or only those named, e.g. file/images),
verifies everything it downloads, stores it, and writes one new snapshot.
Sources not named keep what they had in the previous snapshot.
The new snapshot's ID is printed on standard output; progress goes to
standard error (bars on a terminal, log lines otherwise).`,
		RunE: func(cmd *cobra.Command, names []string) error {
			a, err := g.open()
			if err != nil {
				return err
			}
			prog := progress.New(g.stderr, a.log)
			s, err := a.syncer(prog, nil)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			if t := a.cfg.Sync.Timeout.Duration; t > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, t)
				defer cancel()
			}
			rec, err := s.Run(ctx, names)
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, rec.ID)
			return nil
		},
	}
}
