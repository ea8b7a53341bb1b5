// Command mirrord syncs apt, yum, git and file upstreams into immutable
// snapshots and serves them over HTTP.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mirrord/mirrord/internal/bundle"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/syncer"
)

// Exit codes scripts can rely on.
const (
	exitOK       = 0
	exitFailure  = 1 // the operation failed (network, upstream data, I/O)
	exitUsage    = 2 // bad flags, arguments or config
	exitNotFound = 3 // no such snapshot or channel
	exitConflict = 4 // refused: in use, nothing to roll back, another sync running
	exitProblems = 5 // verify found problems
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// usageError marks errors that are the caller's fault.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// problemsError carries verify's exit status.
type problemsError struct{ n int }

func (p problemsError) Error() string { return fmt.Sprintf("%d problems found", p.n) }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	os.Exit(report(os.Stderr, err))
}

func report(w io.Writer, err error) int {
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(w, "mirrord: %s\n", strings.TrimSpace(err.Error()))
	return exitCode(err)
}

func exitCode(err error) int {
	var ue usageError
	var pe problemsError
	switch {
	case errors.As(err, &ue), errors.Is(err, snapshot.ErrBadID), errors.Is(err, syncer.ErrUnknownSource):
		return exitUsage
	case errors.As(err, &pe):
		return exitProblems
	case errors.Is(err, snapshot.ErrNotFound):
		return exitNotFound
	case errors.Is(err, snapshot.ErrInUse), errors.Is(err, snapshot.ErrNoHistory), errors.Is(err, syncer.ErrBusy),
		errors.Is(err, bundle.ErrConflict):
		return exitConflict
	}
	return exitFailure
}

type globals struct {
	config   string
	logLevel string
	stdout   io.Writer
	stderr   io.Writer
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "mirrord",
		Short:         "Mirror apt, yum, git and file upstreams into immutable, served snapshots",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.PersistentFlags().StringVarP(&g.config, "config", "c", "", "config file (default: $MIRRORD_CONFIG, else ./mirrord.yaml, else /etc/mirrord/mirrord.yaml)")
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "debug, info, warn or error")
	root.AddCommand(
		newSyncCmd(g), newServeCmd(g), newSnapshotCmd(g), newGCCmd(g), newVerifyCmd(g),
		newClientConfigCmd(g), newReposYAMLCmd(g), newInitCmd(g), newVersionCmd(g),
		newExportCmd(g), newImportCmd(g), newBundleCmd(g), newCloudInitCmd(g),
	)
	groups(root)
	return root
}

func (g *globals) logger() *slog.Logger {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: lvl}))
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print mirrord's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintln(g.stdout, "mirrord", version)
			return nil
		},
	}
}

// args wraps a cobra positional-args check so its error is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// groups makes every command that only holds subcommands refuse an unknown
// one (`mirrord snapshot lst`) as a usage error with cobra's suggestions,
// instead of printing help and exiting 0. Without arguments it prints its
// help.
func groups(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		groups(c)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.SuggestionsMinimumDistance = 2
	cmd.RunE = func(cmd *cobra.Command, a []string) error {
		if len(a) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", a[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(a[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return usageError{fmt.Errorf("%s (see '%s --help')", msg, cmd.CommandPath())}
	}
}
