package apt

import (
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/store"
)

func TestPathDigest(t *testing.T) {
	d := store.DigestOf([]byte("x"))
	for _, p := range []string{
		"by-hash/SHA256/" + string(d),
		"dists/bookworm/main/binary-amd64/by-hash/SHA256/" + string(d),
	} {
		if got, ok := (Served{}).PathDigest(p); !ok || got != d {
			t.Errorf("%s: %v %v", p, got, ok)
		}
	}
	for _, p := range []string{
		"dists/bookworm/main/binary-amd64/by-hash/SHA256/" + strings.ToUpper(string(d)),
		"dists/bookworm/main/binary-amd64/by-hash/MD5Sum/" + string(d),
		"dists/xby-hash/SHA256/" + string(d),
		"by-hash/SHA256/" + string(d) + "/x",
		"by-hash/SHA256/" + string(d[:63]),
	} {
		if _, ok := (Served{}).PathDigest(p); ok {
			t.Errorf("%s: accepted", p)
		}
	}
}
