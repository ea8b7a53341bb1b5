package apt

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/config"
)

// A pattern that matches nothing fails the sync, naming the pattern.
func TestFilterUnmatchedPatternFails(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	m := newMirror(t)
	_, err := m.sync(newSource(t, aptConfig(up, func(c *config.AptSource) {
		c.Filter, c.FilterWithDeps = []string{"demo-app", "demo-aap", "nosuch-*"}, true
	})))
	if !errors.Is(err, ErrFilterUnmatched) || !strings.Contains(err.Error(), `"demo-aap", "nosuch-*"`) || strings.Contains(err.Error(), `"demo-app"`) {
		t.Fatalf("err = %v, want ErrFilterUnmatched naming demo-aap and nosuch-*", err)
	}
}

// The warning about dependencies outside the mirrored indices names the
// first 20 of them and counts the rest.
func TestFilterMissingDepsNamed(t *testing.T) {
	var deps []string
	for i := range 25 {
		deps = append(deps, fmt.Sprintf("absent-%02d", i))
	}
	up := apttest.New(t, apttest.Options{})
	up.Add(t, apttest.Package{Name: "needy", Version: "1", Depends: strings.Join(deps, ", ")})
	up.Publish(t)
	m := newMirror(t)
	m.mustSync(newSource(t, aptConfig(up, func(c *config.AptSource) {
		c.Filter, c.FilterWithDeps = []string{"needy"}, true
	})))
	var log string
	for _, line := range strings.Split(m.logBuf.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "not in the mirrored indices") {
			log = line
		}
	}
	if !strings.Contains(log, "count=25") || !strings.Contains(log, "absent-00 (of needy), ") || !strings.Contains(log, "absent-19 (of needy) (and 5 more)") || strings.Contains(log, "absent-20") {
		t.Errorf("log does not name the first 20 missing dependencies and count the rest:\n%s", log)
	}
}
