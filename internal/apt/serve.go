package apt

import (
	"net/http"
	"strings"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// Served is what the server needs to know about apt sources beyond their
// trees: by-hash paths name their content, so they are answered from the
// store by digest even when a snapshot's tree does not list them (a client
// mid-update during a promotion then never sees a hash mismatch). It
// implements server.KindServer and server.PathDigester.
type Served struct{}

// ServeSource implements server.KindServer: apt sources are plain trees.
func (Served) ServeSource(http.ResponseWriter, *http.Request, *snapshot.Record, string, string, bool) bool {
	return false
}

// PathDigest recognises ".../by-hash/SHA256/<64 lowercase hex>".
func (Served) PathDigest(p string) (store.Digest, bool) {
	const suffix = "by-hash/SHA256/"
	i := strings.LastIndex(p, suffix)
	if i < 0 || i > 0 && p[i-1] != '/' {
		return "", false
	}
	d, err := store.ParseDigest(p[i+len(suffix):])
	return d, err == nil
}
