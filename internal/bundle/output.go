package bundle

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Output is where an export writes: stdout ("-"), one file that appears
// under its name only when complete, or split parts.
type Output struct {
	io.Writer
	path  string
	tmp   *os.File
	split *SplitWriter
}

// Create opens path for an export; partSize > 0 writes parts
// path.000, path.001, ... instead.
func Create(path string, partSize int64, stdout io.Writer) (*Output, error) {
	switch {
	case path == "-":
		if partSize > 0 {
			return nil, fmt.Errorf("cannot split a bundle written to stdout")
		}
		return &Output{Writer: stdout, path: "stdout"}, nil
	case partSize > 0:
		sw, err := NewSplitWriter(path, partSize)
		if err != nil {
			return nil, err
		}
		return &Output{Writer: sw, split: sw, path: path}, nil
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, fmt.Errorf("export: %w", err)
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("export: %w", err)
	}
	return &Output{Writer: f, tmp: f, path: path}, nil
}

// Abort removes what a failed export wrote.
func (o *Output) Abort() {
	switch {
	case o.split != nil:
		o.split.Remove()
	case o.tmp != nil:
		o.tmp.Close()
		os.Remove(o.tmp.Name())
	}
}

// Commit finishes the output: the file gets its name. No fsync: import
// verifies every byte, and removable media are flushed when unmounted.
func (o *Output) Commit() error {
	switch {
	case o.split != nil:
		return o.split.Close()
	case o.tmp != nil:
		err := o.tmp.Close()
		if err == nil {
			err = os.Rename(o.tmp.Name(), o.path)
		}
		if err != nil {
			os.Remove(o.tmp.Name())
			return fmt.Errorf("export: writing %s: %w", o.path, err)
		}
	}
	return nil
}

// Where says what was written, for messages.
func (o *Output) Where() string {
	if o.split == nil {
		return o.path
	}
	parts := o.split.Parts()
	if len(parts) == 0 {
		return o.path
	}
	return fmt.Sprintf("%d parts %s .. %s", len(parts), parts[0], parts[len(parts)-1])
}
