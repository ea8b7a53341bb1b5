package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mirrord/mirrord/internal/bytesize"
	"github.com/mirrord/mirrord/internal/snapshot"
)

func newSnapshotCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "List, inspect, compare, promote, roll back and delete snapshots",
	}
	cmd.AddCommand(newListCmd(g), newShowCmd(g), newDiffCmd(g), newPromoteCmd(g), newRollbackCmd(g), newDeleteCmd(g))
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newListCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List snapshots: ID, created, sources, size, channels",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := g.open()
			if err != nil {
				return err
			}
			recs, err := a.catalog.List(cmd.Context())
			if err != nil {
				return err
			}
			chans, err := a.catalog.Channels(cmd.Context())
			if err != nil {
				return err
			}
			sums := make([]snapshot.Summary, len(recs))
			for i, r := range recs {
				sums[i] = snapshot.Summarize(r, snapshot.ChannelsOf(chans, r.ID))
			}
			if asJSON {
				return writeJSON(g.stdout, sums)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tCREATED\tSOURCES\tSIZE\tCHANNELS")
			for _, s := range sums {
				keys := make([]string, len(s.Sources))
				for i, src := range s.Sources {
					keys[i] = src.Kind + "/" + src.Name
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.ID, s.Created.Format(time.RFC3339), strings.Join(keys, ","), bytesize.Format(s.Size), strings.Join(s.Channels, ","))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newShowCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show a snapshot's sources: files, size, items, upstream",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			a, err := g.open()
			if err != nil {
				return err
			}
			rec, err := a.catalog.Get(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			chans, err := a.catalog.Channels(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, snapshot.Detailed(rec, snapshot.ChannelsOf(chans, rec.ID)))
			}
			fmt.Fprintf(g.stdout, "snapshot %s\ncreated  %s\nchannels %s\n\n", rec.ID, rec.Created.Format(time.RFC3339), strings.Join(snapshot.ChannelsOf(chans, rec.ID), ", "))
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SOURCE\tFILES\tSIZE\tITEMS\tSYNCED\tUPSTREAM")
			for _, s := range rec.Sources {
				fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\n", s.Key(), s.Files, bytesize.Format(s.Size), s.NItems, s.Synced.Format(time.RFC3339), s.Upstream)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newDiffCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Show what changed from snapshot A to B: items added, removed, upgraded; git refs moved",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			a, err := g.open()
			if err != nil {
				return err
			}
			ra, err := a.catalog.Get(cmd.Context(), argv[0])
			if err != nil {
				return err
			}
			rb, err := a.catalog.Get(cmd.Context(), argv[1])
			if err != nil {
				return err
			}
			diffs, err := a.catalog.Diff(cmd.Context(), ra, rb)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(g.stdout, diffs)
			}
			printDiff(g.stdout, ra.ID, rb.ID, diffs)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printDiff(w io.Writer, a, b string, diffs []snapshot.SourceDiff) {
	fmt.Fprintf(w, "--- %s\n+++ %s\n", a, b)
	for _, d := range diffs {
		fmt.Fprintf(w, "%s: %s\n", d.Source, d.Status)
		for _, it := range d.Added {
			fmt.Fprintf(w, "  + %s %s\n", it.Name, it.Version)
		}
		for _, it := range d.Removed {
			fmt.Fprintf(w, "  - %s %s\n", it.Name, it.Version)
		}
		for _, c := range d.Changed {
			fmt.Fprintf(w, "  ~ %s %s -> %s\n", c.Name, c.From, c.To)
		}
	}
}

func newPromoteCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "promote ID CHANNEL",
		Short: "Point CHANNEL at snapshot ID (creating the channel if needed)",
		Args:  args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			a, err := g.open()
			if err != nil {
				return err
			}
			if err := snapshot.ValidChannel(argv[1]); err != nil {
				return usageError{err}
			}
			ch, err := a.catalog.Promote(cliActor(cmd.Context()), argv[1], argv[0])
			if err != nil {
				return err
			}
			return printChannel(g, ch, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the channel as JSON (as the API answers)")
	return cmd
}

// printChannel reports where a channel points after a move.
func printChannel(g *globals, ch *snapshot.Channel, asJSON bool) error {
	if asJSON {
		return writeJSON(g.stdout, ch.Detailed())
	}
	_, err := fmt.Fprintf(g.stdout, "%s -> %s\n", ch.Name, ch.Snapshot)
	return err
}

func newRollbackCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "rollback CHANNEL",
		Short: "Move CHANNEL back to the snapshot it pointed at before",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			a, err := g.open()
			if err != nil {
				return err
			}
			ch, err := a.catalog.Rollback(cliActor(cmd.Context()), argv[0])
			if err != nil {
				return err
			}
			return printChannel(g, ch, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the channel as JSON (as the API answers)")
	return cmd
}

func newDeleteCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a snapshot (refused while a channel points at it); run gc to reclaim space",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			a, err := g.open()
			if err != nil {
				return err
			}
			if err := a.catalog.Delete(cmd.Context(), argv[0]); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "deleted %s\n", argv[0])
			return nil
		},
	}
}

// cliActor records "cli USER@HOST" as who moves channels (Move.By).
func cliActor(ctx context.Context) context.Context {
	who := os.Getenv("USER")
	if u, err := user.Current(); err == nil {
		who = u.Username
	}
	host, _ := os.Hostname()
	return snapshot.WithActor(ctx, "cli "+who+"@"+host)
}
