package fs

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
)

// versionName is the file, beside meta/, whose 8 bytes change after every
// completed metadata write. It lets a server that shares this store with
// CLI processes see their promotions on its very next request, at the cost
// of one pread(2) per request instead of a reload of every channel.
const versionName = "meta.version"

func (l layout) version() string { return l.root() + "/" + versionName }

// versionFile is the open meta.version file, shared by readers and writers
// of one Meta. Writers overwrite the 8 bytes in place with a random value
// (not a counter: no read-modify-write race between processes); a reader
// only needs to notice that the value moved.
type versionFile struct {
	once sync.Once
	f    *os.File
	err  error
}

func (v *versionFile) open(l layout) (*os.File, error) {
	v.once.Do(func() {
		v.f, v.err = os.OpenFile(l.version(), os.O_RDWR|os.O_CREATE, 0o644)
		if v.err != nil {
			v.err = fmt.Errorf("meta version: %w", v.err)
		}
	})
	return v.f, v.err
}

// Version implements store.Versioner.
func (m *Meta) Version() (uint64, error) {
	f, err := m.ver.open(m.l)
	if err != nil {
		return 0, err
	}
	var b [8]byte
	if _, err := f.ReadAt(b[:], 0); err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("meta version: %w", err)
	}
	return binary.LittleEndian.Uint64(b[:]), nil
}

// bump records that a metadata write completed. A failure is not the
// write's failure (the value is in place); readers then fall back to their
// refresh interval.
func (m *Meta) bump() {
	f, err := m.ver.open(m.l)
	if err != nil {
		return
	}
	var b [8]byte
	rand.Read(b[:])
	f.WriteAt(b[:], 0)
}
