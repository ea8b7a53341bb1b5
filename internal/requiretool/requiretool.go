// Package requiretool holds the one rule for tests that need an external
// tool (gpg, dpkg-deb, rpm, dnf, git, consul, …): outside CI a missing tool
// skips the test; under CI=true, where .ci/run installs every tool, it
// fails it, so a missing install step can never hide a test.
package requiretool

import (
	"os"
	"os/exec"
	"testing"
)

// Path returns the path of tool, or skips/fails t when it is missing.
func Path(t testing.TB, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		Missing(t, tool+" is not installed (.ci/run installs it; see .ci/apt-packages): "+err.Error())
	}
	return p
}

// All requires every tool.
func All(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		Path(t, tool)
	}
}

// Missing reports a missing requirement: t.Fatal under CI=true, t.Skip
// otherwise.
func Missing(t testing.TB, msg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}
