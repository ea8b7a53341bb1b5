package server

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/fuzzguard"
	"github.com/mirrord/mirrord/internal/snapshot"
)

// FuzzBadPath: the URL-path sanitizer, fed request targets exactly as
// net/http parses them off the wire. A path it lets through is a clean
// tree path (no dot or empty segment, no backslash or control character,
// no encoded slash), so nothing after it can climb out of a tree.
func FuzzBadPath(f *testing.F) {
	for _, s := range []string{
		"/snapshots/20240101T000000Z/file/images/small.bin",
		"/snapshots/20240101T000000Z/file/images/%2e%2e/%2e%2e/etc/passwd",
		"/snapshots/x/file/images/..%2f..%2fetc%2fpasswd",
		"/channels/production/file/images/%5c..%5cetc",
		"http://x/snapshots/../secret",
		"/snapshots/x/file/images/name%20with%20space?q=1#f",
		"/channels/production/apt/debian/dists/bookworm/by-hash/SHA256/" + strings.Repeat("ab", 32),
		"//etc/passwd", "/a/./b", "/a/%00", "*",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		defer fuzzguard.Arm()()
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n")))
		if err != nil {
			return // net/http refuses it before mirrord sees it
		}
		if why := badPath(r); why != "" {
			return
		}
		p := r.URL.Path
		_ = routeOf(p)
		if rest := strings.TrimSuffix(p[1:], "/"); rest != "" {
			if _, err := snapshot.CleanPath(rest); err != nil {
				t.Fatalf("badPath let %q (path %q) through: %v", target, p, err)
			}
		}
		if raw := strings.ToLower(r.URL.RawPath); strings.Contains(raw, "%2f") || strings.Contains(raw, "%5c") || strings.Contains(raw, "%00") {
			t.Fatalf("badPath let an encoded separator through: %q", r.URL.RawPath)
		}
	})
}
