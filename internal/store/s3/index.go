package s3

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"sync"

	"github.com/mirrord/mirrord/internal/store"
)

// While this process holds the writer lock (Options.WriterLock: the sync
// lock, which every process that writes blobs holds), no other process adds
// blobs. Recover, which a sync calls first under that lock, then lists the
// bucket once into a Bloom filter, and Stat answers "absent" for digests the
// filter has never seen without asking the server: a cold sync saves one
// HEAD per blob. A Bloom filter has no false negatives, so a blob that is
// present is never reported absent; a false positive only costs the HEAD.
// Puts add to the filter; it is dropped when the lock is released.

// presence is a Bloom filter of blob digests (7 probes; digests are
// uniformly distributed, so their bytes serve as the hash values).
type presence struct {
	mu   sync.RWMutex
	bits []uint64
}

const presenceProbes = 7

func newPresence(n int) *presence {
	words := max(n*20/64, 1<<14) // 20 bits per expected entry: room to grow
	return &presence{bits: make([]uint64, words)}
}

func (p *presence) probes(d store.Digest, fn func(word int, bit uint64)) {
	var raw [32]byte
	hex.Decode(raw[:], []byte(d))
	m := uint64(len(p.bits)) * 64
	for i := range presenceProbes {
		h := uint64(binary.LittleEndian.Uint32(raw[i*4:])) | uint64(binary.LittleEndian.Uint32(raw[(i*4+16)%28:]))<<32
		idx := h % m
		fn(int(idx/64), 1<<(idx%64))
	}
}

func (p *presence) add(d store.Digest) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.probes(d, func(w int, b uint64) { p.bits[w] |= b })
}

func (p *presence) mayHave(d store.Digest) bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	all := true
	p.probes(d, func(w int, b uint64) { all = all && p.bits[w]&b != 0 })
	return all
}

// writerLock tracks whether this process holds the writer lock, and the
// filter built under it.
type writerLock struct {
	mu    sync.Mutex
	held  bool
	index *presence
}

// NoteWriterLock tells the store that this process took (held) or
// released the writer lock; the lease locks call it themselves, other
// lockers (Consul) through store/open.
func (s *Store) NoteWriterLock(held bool) {
	w := &s.blobs.w
	w.mu.Lock()
	defer w.mu.Unlock()
	w.held = held
	w.index = nil
}

func (w *writerLock) current() *presence {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.held {
		return nil
	}
	return w.index
}

// Recover implements store.Recoverer. S3 needs no recovery (an object is
// complete or absent); under the writer lock it builds the presence filter.
func (b *Blobs) Recover(ctx context.Context) (int, error) {
	b.w.mu.Lock()
	held := b.w.held
	b.w.mu.Unlock()
	if !held {
		return 0, nil
	}
	var ds []store.Digest
	err := b.List(ctx, func(i store.Info) error {
		ds = append(ds, i.Digest)
		return nil
	})
	if err != nil {
		return 0, err
	}
	p := newPresence(len(ds))
	for _, d := range ds {
		p.add(d)
	}
	b.w.mu.Lock()
	if b.w.held {
		b.w.index = p
	}
	b.w.mu.Unlock()
	return 0, nil
}

var _ store.Recoverer = (*Blobs)(nil)
