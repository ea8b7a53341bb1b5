package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mirrord/mirrord/internal/bytesize"
	"github.com/mirrord/mirrord/internal/syncer"
)

func newGCCmd(g *globals) *cobra.Command {
	var grace time.Duration
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "gc",
		Short: "Delete blobs that no snapshot references (mark and sweep)",
		Long: `gc deletes every blob no snapshot record references and that is older than
--grace. It takes the sync lock, so it never runs beside a sync on this store;
the grace period also protects blobs written by a sync it cannot see.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := g.open()
			if err != nil {
				return err
			}
			st, err := syncer.GC(cmd.Context(), a.catalog, grace, dryRun)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, st)
			}
			verb := "deleted"
			if dryRun {
				verb = "would delete"
			}
			fmt.Fprintf(g.stdout, "%s %d blobs (%s); %d referenced, %d unreferenced but younger than %s, %d temp files removed\n",
				verb, st.Deleted, bytesize.Format(st.DeletedBytes), st.Referenced, st.Young, grace, st.TempRemoved)
			return nil
		},
	}
	cmd.Flags().DurationVar(&grace, "grace", time.Hour, "keep unreferenced blobs younger than this")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "report, delete nothing")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newVerifyCmd(g *globals) *cobra.Command {
	var asJSON bool
	var workers int
	cmd := &cobra.Command{
		Use:   "verify [ID...]",
		Short: "Re-hash every blob the snapshots (all, or those named) reference and report missing or corrupt ones",
		RunE: func(cmd *cobra.Command, ids []string) error {
			a, err := g.open()
			if err != nil {
				return err
			}
			st, err := a.catalog.Verify(cmd.Context(), ids, workers)
			if err != nil {
				return err
			}
			if asJSON {
				if err := writeJSON(g.stdout, st); err != nil {
					return err
				}
			} else {
				for _, p := range st.Problems {
					fmt.Fprintln(g.stdout, p.String())
				}
				fmt.Fprintf(g.stdout, "verified %d snapshots, %d blobs, %s: %d problems\n", st.Snapshots, st.Blobs, bytesize.Format(st.Bytes), len(st.Problems))
			}
			if len(st.Problems) > 0 {
				return problemsError{len(st.Problems)}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&workers, "workers", 4, "blobs hashed at once")
	return cmd
}
