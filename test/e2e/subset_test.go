package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A filter pattern that matches nothing is a typo, not an empty mirror:
// sync exits 1 naming the pattern and the source, and writes no snapshot.
func TestFilterMatchingNothingFails(t *testing.T) {
	t.Run("apt", func(t *testing.T) {
		up := demoUpstream(t)
		e := newAptEnv(t, up, freePort(t), "    filter: [demo-app, demo-ap]\n    filter_with_deps: true\n")
		checkUnmatched(t, e, "apt/demo", `"demo-ap"`)
	})
	t.Run("yum", func(t *testing.T) {
		up := newYumUpstream(t)
		e := newEnv(t)
		e.writeConfig(`data_dir: data
yum:
  - name: subset
    url: ` + up.BaseURL() + `
    gpgkey: ` + up.fix.Signer.PublicKeyFile + `
    filter: [foo, fooo]
`)
		checkUnmatched(t, e, "yum/subset", `"fooo"`)
	})
}

func checkUnmatched(t *testing.T, e *env, source, pattern string) {
	t.Helper()
	r := e.run("sync")
	if r.code != 1 || !strings.Contains(r.stderr, source) || !strings.Contains(r.stderr, pattern) || !strings.Contains(r.stderr, "matches no package") {
		t.Fatalf("sync: exit %d, stderr:\n%s\nwant exit 1 naming %s and %s", r.code, r.stderr, source, pattern)
	}
	if ids, _ := os.ReadDir(filepath.Join(e.dir, "data", "meta", "snapshots")); len(ids) != 0 {
		t.Errorf("a snapshot was written: %v", ids)
	}
}
