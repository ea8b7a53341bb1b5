package apttest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
)

// The fixture itself must satisfy stock apt: signed, resolvable, fetchable.
func TestRepoServesAptGet(t *testing.T) {
	r := New(t, Options{ByHash: true})
	r.Add(t,
		Package{Name: "demo-app", Version: "1:1.0~rc1-1", Depends: "demo-lib (>= 1.0)"},
		Package{Name: "demo-lib", Version: "1.0-1", Arch: "all"},
	)
	r.Publish(t)
	c := NewClient(t, "", "fixture.list", "deb [signed-by="+r.Key.Keyring+"] "+r.URL+" stable main\n")
	c.Update("-o", "Acquire::By-Hash=force")
	if v := c.Candidate("demo-app"); v != "1:1.0~rc1-1" {
		t.Fatalf("candidate %q", v)
	}
	got := c.Download("demo-app")
	if len(got) != 2 {
		t.Fatalf("downloaded %v", keys(got))
	}
	for name, data := range got {
		sum := sha256.Sum256(data)
		d := r.Deb(t, strings.Split(name, "_")[0], "", "")
		if hex.EncodeToString(sum[:]) != d.SHA256 {
			t.Errorf("%s: hash differs from the built package", name)
		}
	}
	if r.Requests("/dists/stable/main/binary-amd64/by-hash/") == 0 {
		t.Error("by-hash was not used")
	}
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
