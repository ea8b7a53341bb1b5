package yum

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"strings"

	"github.com/mirrord/mirrord/internal/store"
)

// Checksum is a typed digest as yum metadata writes it:
// <checksum type="sha256">hex</checksum>.
type Checksum struct {
	Type string // md5, sha (= sha1), sha1, sha224, sha256, sha384, sha512
	Hex  string // lowercase
}

func (c Checksum) String() string { return c.Type + ":" + c.Hex }

// newHash returns the hash for a yum checksum type.
func newHash(typ string) (hash.Hash, error) {
	switch strings.ToLower(typ) {
	case "md5":
		return md5.New(), nil
	case "sha", "sha1":
		return sha1.New(), nil
	case "sha224":
		return sha256.New224(), nil
	case "sha256":
		return sha256.New(), nil
	case "sha384":
		return sha512.New384(), nil
	case "sha512":
		return sha512.New(), nil
	}
	return nil, fmt.Errorf("unsupported checksum type %q (want md5, sha, sha1, sha224, sha256, sha384 or sha512)", typ)
}

// newChecksum normalises and validates a checksum read from metadata.
func newChecksum(typ, value string) (Checksum, error) {
	c := Checksum{Type: strings.ToLower(strings.TrimSpace(typ)), Hex: strings.ToLower(strings.TrimSpace(value))}
	h, err := newHash(c.Type)
	if err != nil {
		return Checksum{}, err
	}
	if b, err := hex.DecodeString(c.Hex); err != nil || len(b) != h.Size() {
		return Checksum{}, fmt.Errorf("%s checksum %q: want %d hex digits", c.Type, c.Hex, 2*h.Size())
	}
	return c, nil
}

// SHA256 returns the checksum as a store digest when it is a sha256.
func (c Checksum) SHA256() (store.Digest, bool) {
	if c.Type != "sha256" {
		return "", false
	}
	return store.Digest(c.Hex), true
}

// hasher computes a Checksum's type over what is written to it.
type hasher struct {
	want Checksum
	h    hash.Hash
	n    int64
}

func newHasher(want Checksum) (*hasher, error) {
	h, err := newHash(want.Type)
	if err != nil {
		return nil, err
	}
	return &hasher{want: want, h: h}, nil
}

func (h *hasher) Write(p []byte) (int, error) {
	h.n += int64(len(p))
	return h.h.Write(p)
}

// got is the checksum of what was written so far.
func (h *hasher) got() Checksum {
	return Checksum{Type: h.want.Type, Hex: hex.EncodeToString(h.h.Sum(nil))}
}

// check compares what was written with the wanted checksum (and size,
// when size > 0).
func (h *hasher) check(size int64) error {
	if size > 0 && h.n != size {
		return fmt.Errorf("%w: expected %d bytes, got %d", ErrMismatch, size, h.n)
	}
	if got := h.got(); got.Hex != h.want.Hex {
		return fmt.Errorf("%w: expected %s, got %s", ErrMismatch, h.want, got)
	}
	return nil
}

// checkedReader passes r through, hashing it, and turns the final io.EOF
// into an error when the content does not match: a store.Put reading from
// it then never makes the blob visible.
type checkedReader struct {
	r    io.Reader
	h    *hasher
	size int64
	err  error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if err == io.EOF {
		if cerr := c.h.check(c.size); cerr != nil {
			c.err = cerr
			return n, cerr
		}
	}
	return n, err
}
