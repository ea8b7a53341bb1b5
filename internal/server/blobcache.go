package server

import (
	"sync"

	"github.com/mirrord/mirrord/internal/store"
)

const (
	smallBlobMax = 64 << 10 // blobs up to this size are kept in memory
	blobCacheMax = 64 << 20 // total bytes of cached blobs
)

// cachedBlob is a small blob's content with its precomputed ETag header.
// Content is immutable (addressed by digest), so caching is always safe.
type cachedBlob struct {
	data   []byte
	etag   []string // ETag header value
	length []string // Content-Length header value
}

// blobCache keeps small blobs in memory, bounded in total size, evicting
// the oldest insertions first.
type blobCache struct {
	maxItem int64
	max     int64

	mu    sync.RWMutex
	m     map[store.Digest]*cachedBlob
	fifo  []store.Digest
	head  int
	total int64
}

func newBlobCache(maxItem, max int64) *blobCache {
	return &blobCache{maxItem: maxItem, max: max, m: map[store.Digest]*cachedBlob{}}
}

func (c *blobCache) get(d store.Digest) *cachedBlob {
	c.mu.RLock()
	cb := c.m[d]
	c.mu.RUnlock()
	return cb
}

func (c *blobCache) put(d store.Digest, cb *cachedBlob) {
	n := int64(len(cb.data))
	if n > c.maxItem || n > c.max {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[d]; ok {
		return
	}
	for c.total+n > c.max && c.head < len(c.fifo) {
		old := c.fifo[c.head]
		c.fifo[c.head] = ""
		c.head++
		if ob, ok := c.m[old]; ok {
			c.total -= int64(len(ob.data))
			delete(c.m, old)
		}
	}
	if c.head > 1024 && c.head > len(c.fifo)/2 {
		c.fifo = append(c.fifo[:0:0], c.fifo[c.head:]...)
		c.head = 0
	}
	c.m[d] = cb
	c.fifo = append(c.fifo, d)
	c.total += n
}

// stats reports the number of cached blobs and their total size.
func (c *blobCache) stats() (int, int64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m), c.total
}
