package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mirrord/mirrord/internal/bundle"
	"github.com/mirrord/mirrord/internal/bytesize"
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/progress"
)

func newExportCmd(g *globals) *cobra.Command {
	var since, out, split string
	cmd := &cobra.Command{
		Use:   "export ID -o FILE [--since BASE_ID] [--split SIZE]",
		Short: "Write a signed air-gap bundle of a snapshot (only what BASE_ID lacks with --since)",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, ids []string) error {
			if out == "" {
				return usageError{fmt.Errorf("export: -o FILE is required (- for stdout)")}
			}
			var partSize int64
			if split != "" {
				n, err := bundle.ParseSize(split)
				if err != nil {
					return usageError{fmt.Errorf("--split: %w", err)}
				}
				if out == "-" {
					return usageError{fmt.Errorf("--split: cannot split a bundle written to stdout")}
				}
				partSize = n
			}
			a, err := g.open()
			if err != nil {
				return err
			}
			key, err := a.signingKey(cmd.Context()) // the store's identity, as syncs sign with
			if err != nil {
				return err
			}
			x := &bundle.Exporter{Catalog: a.catalog, Key: key, Progress: progress.New(g.stderr, a.log)}
			m, err := x.Plan(cmd.Context(), ids[0], bundle.ExportOptions{Since: since, PartSize: partSize})
			if err != nil {
				return err
			}
			w, err := bundle.Create(out, partSize, g.stdout)
			if err != nil {
				return err
			}
			if err := x.Write(cmd.Context(), w, m); err != nil {
				w.Abort()
				return err
			}
			if err := w.Commit(); err != nil {
				return err
			}
			report := g.stdout
			if out == "-" {
				report = g.stderr
			}
			fmt.Fprintf(report, "exported snapshot %s%s: %d blobs, %s, signed by %s -> %s\n",
				m.Snapshot, sinceText(m.Base), len(m.Blobs), bytesize.Format(m.Bytes), m.Signer, w.Where())
			return nil
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "base snapshot the importer has: leave out the blobs it needs")
	cmd.Flags().StringVarP(&out, "output", "o", "", "bundle file (- for stdout)")
	cmd.Flags().StringVar(&split, "split", "", "cut the bundle into parts FILE.000, FILE.001, ... of at most SIZE (e.g. 4095M)")
	return cmd
}

func sinceText(base string) string {
	if base == "" {
		return ""
	}
	return " since " + base
}

func newImportCmd(g *globals) *cobra.Command {
	var keyring string
	cmd := &cobra.Command{
		Use:   "import FILE [--keyring KEYRING]",
		Short: "Import a signed bundle (FILE, its first part FILE.000, or - for stdin) under its snapshot's ID",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, files []string) error {
			a, err := g.open()
			if err != nil {
				return err
			}
			krs := keyrings(a.cfg, keyring)
			kr, _, err := krs.Load()
			if err != nil {
				return usageError{err}
			}
			src, err := bundle.Open(files[0], os.Stdin)
			if err != nil {
				return err
			}
			defer src.Close()
			im := &bundle.Importer{Catalog: a.catalog, Progress: progress.New(g.stderr, a.log)}
			res, err := im.Import(cmd.Context(), src, kr)
			if err != nil {
				return fmt.Errorf("import %s: %w", src.Name, err)
			}
			if err := krs.Install(); err != nil {
				return err
			}
			m := res.Manifest
			if res.Present {
				fmt.Fprintf(g.stdout, "snapshot %s is present already: nothing to do\n", m.Snapshot)
				return nil
			}
			fmt.Fprintf(g.stdout, "imported snapshot %s%s: %d blobs, %s (%d new, %d present already), signed by %s\n",
				m.Snapshot, sinceText(m.Base), res.Blobs, bytesize.Format(res.Bytes), res.Written, res.Blobs-res.Written, res.Signer)
			return nil
		},
	}
	cmd.Flags().StringVar(&keyring, "keyring", "", "OpenPGP public keys (armored or binary) to accept; installed for later imports")
	return cmd
}

func keyrings(cfg *config.Config, flag string) bundle.Keyrings {
	return bundle.Keyrings{Flag: flag, Configured: cfg.Bundle.Keyring, Installed: filepath.Join(cfg.DataDir, "bundle", "trusted.gpg")}
}

func newBundleCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Inspect air-gap bundles",
	}
	var keyring string
	verify := &cobra.Command{
		Use:   "verify FILE [--keyring KEYRING]",
		Short: "Check a bundle's signature and every entry's digest without importing it",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, files []string) error {
			krs := bundle.Keyrings{Flag: keyring}
			if keyring == "" {
				cfg, err := config.Load(g.config)
				if err != nil {
					return usageError{err}
				}
				krs = keyrings(cfg, "")
			}
			kr, _, err := krs.Load()
			if err != nil {
				return usageError{err}
			}
			src, err := bundle.Open(files[0], os.Stdin)
			if err != nil {
				return err
			}
			defer src.Close()
			res, err := bundle.Verify(cmd.Context(), src, kr, progress.New(g.stderr, g.logger()))
			if err != nil {
				return fmt.Errorf("bundle %s: %w", src.Name, err)
			}
			m := res.Manifest
			fmt.Fprintf(g.stdout, "bundle %s: snapshot %s%s, %d blobs, %s, signed by %s: OK\n",
				src.Name, m.Snapshot, sinceText(m.Base), res.Blobs, bytesize.Format(res.Bytes), res.Signer)
			return nil
		},
	}
	verify.Flags().StringVar(&keyring, "keyring", "", "OpenPGP public keys (armored or binary) to accept")
	cmd.AddCommand(verify)
	return cmd
}
