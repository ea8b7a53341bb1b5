package yum

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// codec is a metadata compression format.
type codec string

const (
	plain codec = ""
	gz    codec = "gz"
	xzc   codec = "xz"
	zst   codec = "zst"
	bz2   codec = "bz2"
	zck   codec = "zck" // zchunk: verified by its header checksum only
)

// errNoDecoder: the format is recognised but mirrord cannot decompress it.
var errNoDecoder = errors.New("no decoder for this compression")

// codecByName guesses the format from a file name's extension.
func codecByName(name string) codec {
	switch strings.ToLower(path.Ext(name)) {
	case ".gz", ".tgz":
		return gz
	case ".xz":
		return xzc
	case ".zst", ".zstd":
		return zst
	case ".bz2":
		return bz2
	case ".zck":
		return zck
	}
	return plain
}

// sniff recognises a format by its magic bytes.
func sniff(head []byte) codec {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return gz
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}):
		return xzc
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return zst
	case bytes.HasPrefix(head, []byte("BZh")):
		return bz2
	case bytes.HasPrefix(head, []byte("\x00ZCK1")):
		return zck
	}
	return plain
}

// detect decides the format of a file from its name and first bytes. A
// compression extension whose magic is missing is an error: the file is
// not what its name says.
func detect(name string, head []byte) (codec, error) {
	byName, byMagic := codecByName(name), sniff(head)
	switch {
	case byName == plain:
		return byMagic, nil
	case byMagic == byName:
		return byName, nil
	}
	got := "uncompressed data"
	if byMagic != plain {
		got = string(byMagic) + " data"
	}
	return plain, fmt.Errorf("%s: named like %s but contains %s", name, byName, got)
}

// decompress returns the uncompressed content of r, detecting the format
// from name and magic. It fails with errNoDecoder for zchunk.
func decompress(r io.Reader, name string) (io.ReadCloser, codec, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(8)
	c, err := detect(name, head)
	if err != nil {
		return nil, plain, err
	}
	rc, err := decoder(br, c)
	if err != nil {
		return nil, c, fmt.Errorf("%s: %w", name, err)
	}
	return rc, c, nil
}

func decoder(r io.Reader, c codec) (io.ReadCloser, error) {
	switch c {
	case plain:
		return io.NopCloser(r), nil
	case gz:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zr, nil
	case xzc:
		zr, err := xz.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return io.NopCloser(zr), nil
	case zst:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<32))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	case bz2:
		return io.NopCloser(bzip2.NewReader(r)), nil
	}
	return nil, fmt.Errorf("%s: %w", c, errNoDecoder)
}
