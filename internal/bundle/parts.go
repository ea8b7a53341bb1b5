package bundle

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"

	"github.com/mirrord/mirrord/internal/bytesize"
)

// PartName is the name of part i of a split bundle FILE: FILE.000, ...
func PartName(file string, i int) string { return fmt.Sprintf("%s.%03d", file, i) }

// ParseSize reads a part size with bytesize.Parse (4G is 4 GiB; FAT32
// holds at most 4G-1 bytes per file, so use 4095M there); it must be
// positive.
func ParseSize(s string) (int64, error) {
	n, err := bytesize.Parse(s)
	if err == nil && n <= 0 {
		err = fmt.Errorf("size %q: must be positive", s)
	}
	return n, err
}

// SplitWriter writes a stream as parts FILE.000, FILE.001, ... of at most
// size bytes each, creating each part when its first byte arrives.
type SplitWriter struct {
	file  string
	size  int64
	i     int
	f     *os.File
	inCur int64
	names []string
}

// NewSplitWriter returns a writer of parts of file. Existing parts are
// replaced.
func NewSplitWriter(file string, size int64) (*SplitWriter, error) {
	if size <= 0 {
		return nil, fmt.Errorf("split size %d: must be positive", size)
	}
	return &SplitWriter{file: file, size: size, i: -1}, nil
}

func (w *SplitWriter) Write(p []byte) (int, error) {
	var n int
	for len(p) > 0 {
		if w.f == nil || w.inCur == w.size {
			if err := w.next(); err != nil {
				return n, err
			}
		}
		k := min(int64(len(p)), w.size-w.inCur)
		m, err := w.f.Write(p[:k])
		n += m
		w.inCur += int64(m)
		if err != nil {
			return n, fmt.Errorf("writing %s: %w", w.f.Name(), err)
		}
		p = p[k:]
	}
	return n, nil
}

func (w *SplitWriter) next() error {
	if err := w.closeCur(); err != nil {
		return err
	}
	w.i++
	name := PartName(w.file, w.i)
	f, err := os.Create(name)
	if err != nil {
		return fmt.Errorf("creating bundle part: %w", err)
	}
	w.f, w.inCur = f, 0
	w.names = append(w.names, name)
	return nil
}

func (w *SplitWriter) closeCur() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close() // no fsync: see Close
	w.f = nil
	if err != nil {
		return fmt.Errorf("writing %s: %w", w.names[len(w.names)-1], err)
	}
	return nil
}

// Close finishes the last part and removes stale parts a longer earlier
// export left behind (so import does not read them as a continuation).
// Parts are not fsynced: import verifies every byte, and a removable
// medium is flushed when it is unmounted.
func (w *SplitWriter) Close() error {
	if err := w.closeCur(); err != nil {
		return err
	}
	for i := w.i + 1; ; i++ {
		err := os.Remove(PartName(w.file, i))
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("removing stale part: %w", err)
		}
	}
}

// Parts are the names of the parts written so far.
func (w *SplitWriter) Parts() []string { return append([]string(nil), w.names...) }

// Remove deletes every part written (after a failed export).
func (w *SplitWriter) Remove() {
	if w.f != nil {
		w.f.Close()
		w.f = nil
	}
	for _, n := range w.names {
		os.Remove(n)
	}
}

// partReader reads parts FILE.000, FILE.001, ... as one stream and knows
// where it is, so errors can name the part.
type partReader struct {
	file   string
	i      int
	f      *os.File
	sizes  []int64 // sizes of the parts opened so far
	pos    int64   // bytes read from the current part
	layout int64   // the parts' size as found on disk (checkLayout)
	off    int64   // bytes read from all parts
	marked int64   // off when the current entry started (see mark)
}

// lookBehind is how far the zstd decoder may have read ahead of the entry
// it returns: one block (at most 128 KiB) and its header.
const lookBehind = 128<<10 + 64

// mark notes that an entry starts here in the decoded stream, so errors
// can name the parts its compressed bytes may lie in.
func (p *partReader) mark() { p.marked = p.off }

// partAt is the part holding stream offset off.
func (p *partReader) partAt(off int64) int {
	var start int64
	for i, n := range p.sizes {
		if off < start+n {
			return i
		}
		start += n
	}
	return len(p.sizes) - 1
}

func openParts(file string) (*partReader, error) {
	layout, err := checkLayout(file)
	if err != nil {
		return nil, err
	}
	p := &partReader{file: file, layout: layout}
	f, err := os.Open(PartName(file, 0))
	if err != nil {
		return nil, fmt.Errorf("bundle part %s: %w", PartName(file, 0), err)
	}
	if err := p.use(f); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *partReader) use(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	p.f, p.pos = f, 0
	p.sizes = append(p.sizes, fi.Size())
	return nil
}

func (p *partReader) Read(b []byte) (int, error) {
	for p.f != nil {
		n, err := p.f.Read(b)
		p.pos += int64(n)
		p.off += int64(n)
		if n > 0 || err == nil {
			return n, nil
		}
		if err != io.EOF {
			return 0, fmt.Errorf("reading bundle part %s: %w", p.current(), err)
		}
		p.f.Close()
		p.f = nil
		f, err := os.Open(PartName(p.file, p.i+1))
		if errors.Is(err, fs.ErrNotExist) {
			return 0, io.EOF
		}
		if err != nil {
			return 0, fmt.Errorf("bundle part %s: %w", PartName(p.file, p.i+1), err)
		}
		p.i++
		if err := p.use(f); err != nil {
			return 0, err
		}
	}
	return 0, io.EOF
}

func (p *partReader) Close() error {
	if p.f != nil {
		return p.f.Close()
	}
	return nil
}

func (p *partReader) current() string { return PartName(p.file, p.i) }

// checkLayout checks the parts on disk before anything is read: they are
// contiguous from .000, and every part but the last has the same size
// (the largest; a shorter one is truncated). It returns that size, 0 for
// a single part.
func checkLayout(file string) (int64, error) {
	var sizes []int64
	for i := 0; ; i++ {
		fi, err := os.Stat(PartName(file, i))
		if err != nil {
			break
		}
		sizes = append(sizes, fi.Size())
	}
	last := len(sizes) - 1
	for i := last + 2; i < last+1000; i++ {
		if _, err := os.Stat(PartName(file, i)); err == nil {
			return 0, fmt.Errorf("%w: part %s is missing (%s exists)", ErrCorrupt, PartName(file, last+1), PartName(file, i))
		}
	}
	if last < 1 {
		return 0, nil
	}
	size := slices.Max(sizes[:last])
	for i, n := range sizes[:last] {
		if n != size {
			return 0, fmt.Errorf("%w: part %s is truncated: %d of %d bytes", ErrCorrupt, PartName(file, i), n, size)
		}
	}
	if sizes[last] > size {
		return 0, fmt.Errorf("%w: the last part %s has %d bytes, more than the %d of the others", ErrCorrupt, PartName(file, last), sizes[last], size)
	}
	return size, nil
}

// checkPartSize compares the parts' size with the signed manifest's.
func (p *partReader) checkPartSize(size int64) error {
	if size <= 0 {
		return fmt.Errorf("%w: %s is a split part, but the manifest has no part size", ErrCorrupt, PartName(p.file, 0))
	}
	if p.layout > 0 && p.layout != size {
		return fmt.Errorf("%w: parts of %s have %d bytes, the manifest says %d", ErrCorrupt, p.file, p.layout, size)
	}
	if p.sizes[0] > size {
		return fmt.Errorf("%w: part %s has %d bytes, more than the part size %d", ErrCorrupt, PartName(p.file, 0), p.sizes[0], size)
	}
	return nil
}

// explain turns a stream error into one naming the part it happened in.
func (p *partReader) explain(err error, size int64) error {
	if !errors.Is(err, ErrCorrupt) {
		return err // not about the bytes read (a signature, the store)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) && p.f == nil {
		// The stream ended before the manifest's last entry.
		last := p.sizes[len(p.sizes)-1]
		if size <= 0 {
			size = p.layout
		}
		if size > 0 && last == size {
			return fmt.Errorf("%w: bundle ends with part %s: part %s is missing: %v", ErrCorrupt, p.current(), PartName(p.file, p.i+1), err)
		}
		return fmt.Errorf("%w: part %s is truncated (%d bytes), or the parts after it are missing: %v", ErrCorrupt, p.current(), last, err)
	}
	return fmt.Errorf("in %s: %w", p.span(), err)
}

// span names the parts the current entry was read from.
func (p *partReader) span() string {
	if from := p.partAt(max(0, p.marked-lookBehind)); from < p.i {
		return fmt.Sprintf("parts %s to %s (one of them is corrupt)", PartName(p.file, from), p.current())
	}
	return fmt.Sprintf("part %s (corrupt)", p.current())
}
