package fs

import (
	"context"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/mirrord/mirrord/internal/store"
)

// Meta is the metadata half of a Store. It implements store.Meta.
type Meta struct {
	l   layout
	ver versionFile
}

// placeRetries bounds retries when a concurrent Delete prunes the directory
// a value is being placed into.
const placeRetries = 10

// Get implements store.Meta. A key naming a "directory" is absent.
func (m *Meta) Get(ctx context.Context, key string) ([]byte, error) {
	if err := store.ValidKey(key); err != nil {
		return nil, fmt.Errorf("meta get: %w", err)
	}
	b, err := os.ReadFile(m.l.meta(key))
	if isAbsent(err) {
		return nil, fmt.Errorf("meta get %q: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("meta get %q: %w", key, err)
	}
	return b, nil
}

// isAbsent reports whether err means there is no value at the path.
func isAbsent(err error) bool {
	return errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.EISDIR) ||
		errors.Is(err, syscall.ENOTDIR)
}

// Put implements store.Meta: it renames a fsynced temp file over the value.
func (m *Meta) Put(ctx context.Context, key string, value []byte) error {
	if err := store.ValidKey(key); err != nil {
		return fmt.Errorf("meta put: %w", err)
	}
	tmp, err := m.writeTemp(value)
	if err != nil {
		return fmt.Errorf("meta put %q: %w", key, err)
	}
	moved := false
	err = m.place(key, func(final string) error {
		err := os.Rename(tmp, final)
		moved = err == nil
		return err
	})
	if err != nil {
		if !moved {
			os.Remove(tmp)
		}
		return fmt.Errorf("meta put %q: %w", key, err)
	}
	m.bump()
	return nil
}

// Create implements store.Meta: it hard-links a fully written temp file to
// the key, which fails atomically if the key exists.
func (m *Meta) Create(ctx context.Context, key string, value []byte) error {
	if err := store.ValidKey(key); err != nil {
		return fmt.Errorf("meta create: %w", err)
	}
	tmp, err := m.writeTemp(value)
	if err != nil {
		return fmt.Errorf("meta create %q: %w", key, err)
	}
	defer os.Remove(tmp)
	err = m.place(key, func(final string) error { return os.Link(tmp, final) })
	if errors.Is(err, iofs.ErrExist) {
		return fmt.Errorf("meta create %q: %w", key, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("meta create %q: %w", key, err)
	}
	m.bump()
	return nil
}

// writeTemp writes value to a fsynced, closed temp file and returns its path.
func (m *Meta) writeTemp(value []byte) (string, error) {
	f, err := m.l.createTemp(metaTempPrefix)
	if err != nil {
		return "", err
	}
	_, err = f.Write(value)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("write temp %s: %w", f.Name(), err)
	}
	return f.Name(), nil
}

// place creates key's parent directories, runs op on the key's path and
// fsyncs the parent. It retries when a concurrent Delete pruned a parent.
func (m *Meta) place(key string, op func(final string) error) error {
	final := m.l.meta(key)
	parent := filepath.Dir(final)
	for i := 0; ; i++ {
		err := mkdirAllSync(parent)
		if err == nil {
			err = op(final)
		}
		if err == nil {
			return syncDir(parent)
		}
		if !errors.Is(err, iofs.ErrNotExist) || i == placeRetries {
			return err
		}
	}
}

// List implements store.Meta. prefix "" is the root; a trailing slash is
// allowed. A missing prefix, or one naming a value, lists as empty. Temp and
// dot files are ignored.
func (m *Meta) List(ctx context.Context, prefix string) ([]string, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	dir := m.l.metaDir()
	if prefix != "" {
		if err := store.ValidKey(prefix); err != nil {
			return nil, fmt.Errorf("meta list: %w", err)
		}
		dir = m.l.meta(prefix)
	}
	entries, err := os.ReadDir(dir)
	if isAbsent(err) {
		return []string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("meta list %q: %w", prefix, err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if store.ValidKey(e.Name()) == nil && (e.IsDir() || e.Type().IsRegular()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

// Delete implements store.Meta. It then removes the parent directories the
// deletion left empty, up to meta/.
func (m *Meta) Delete(ctx context.Context, key string) error {
	if err := store.ValidKey(key); err != nil {
		return fmt.Errorf("meta delete: %w", err)
	}
	path := m.l.meta(key)
	fi, err := os.Lstat(path)
	if isAbsent(err) || err == nil && fi.IsDir() {
		return nil
	}
	if err == nil {
		err = os.Remove(path)
	}
	if err != nil && !isAbsent(err) {
		return fmt.Errorf("meta delete %q: %w", key, err)
	}
	m.prune(filepath.Dir(path))
	m.bump()
	return nil
}

// prune removes dir and its ancestors below meta/ while they are empty.
func (m *Meta) prune(dir string) {
	for root := m.l.metaDir(); dir != root && strings.HasPrefix(dir, root); dir = filepath.Dir(dir) {
		if syscall.Rmdir(dir) != nil {
			return
		}
	}
}
