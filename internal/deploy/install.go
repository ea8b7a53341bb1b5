package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mirrord/mirrord/internal/atomicfile"
	"github.com/mirrord/mirrord/internal/source"
)

// Install writes plan's files under root (a node's "/", or an image), each
// behind header, replaced atomically and only when its content changed;
// first fetches mirrord's public key with key for every place plan needs
// it (apt refuses sources whose key is missing); and
// makes each git-config file include its mirrord file. It reports what it
// did to w, one line a file. It is what the bootstrap script does, for
// `client-config --consul --write`.
func Install(ctx context.Context, w io.Writer, root, header string, plan source.ClientPlan, key func(ctx context.Context) ([]byte, error)) error {
	for _, u := range plan.Unfiled {
		fmt.Fprintf(w, "# not written (%s has no client file):\n%s", u.Source, u.Text)
	}
	if len(plan.Keys) > 0 {
		data, err := key(ctx)
		if err != nil {
			return err
		}
		for _, k := range plan.Keys {
			if err := installFile(w, filepath.Join(root, k), data); err != nil {
				return err
			}
		}
	}
	for _, f := range plan.Files {
		if err := installFile(w, filepath.Join(root, f.Path), []byte(header+f.Text)); err != nil {
			return err
		}
	}
	for _, inc := range plan.Includes {
		if err := includeGitConfig(w, filepath.Join(root, inc[0]), filepath.Join(root, inc[1])); err != nil {
			return err
		}
	}
	return nil
}

func installFile(w io.Writer, path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		fmt.Fprintf(w, "unchanged %s\n", path)
		return nil
	}
	if err := atomicfile.Write(path, data, 0o644, nil); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	fmt.Fprintf(w, "wrote %s\n", path)
	return nil
}

// includeGitConfig makes the git-config file system include the one at
// include (once).
func includeGitConfig(w io.Writer, system, include string) error {
	old, err := os.ReadFile(system)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	line := "\tpath = " + include + "\n"
	if bytes.Contains(old, []byte(line)) {
		return nil
	}
	data := append([]byte(nil), old...)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	data = append(data, "[include]\n"+line...)
	if err := atomicfile.Write(system, data, 0o644, nil); err != nil {
		return fmt.Errorf("writing %s: %w", system, err)
	}
	fmt.Fprintf(w, "included %s from %s\n", include, system)
	return nil
}
