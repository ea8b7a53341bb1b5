package yum

import (
	"os/exec"
	"testing"

	"github.com/mirrord/mirrord/internal/snapshot"
)

type snapshotRecord = snapshot.Record

func mustSource(t *testing.T, rec *snapshot.Record, key string) *snapshot.SourceRecord {
	t.Helper()
	s, ok := rec.Source(key)
	if !ok {
		t.Fatalf("snapshot %s has no %s", rec.ID, key)
	}
	return s
}

// updateInfoXML has one advisory for bar (which filtered mirrors of foo
// keep) and one for lonely (which they drop).
const updateInfoXML = `<?xml version="1.0" encoding="UTF-8"?>
<updates>
  <update from="security@example.org" status="final" type="security" version="2.0">
    <id>FIX-2026:0001</id>
    <title>bar update</title>
    <issued date="2026-01-01 00:00:00"/>
    <updated date="2026-01-02 00:00:00"/>
    <severity>Important</severity>
    <summary>bar fix</summary>
    <description>Fixes bar &amp; friends.</description>
    <references>
      <reference href="https://bugs.example.org/1" id="1" type="bugzilla" title="bar bug"/>
    </references>
    <pkglist>
      <collection short="fixture">
        <name>fixture</name>
        <package name="bar" version="1.2" release="1" epoch="0" arch="noarch" src="bar-1.2-1.src.rpm">
          <filename>bar-1.2-1.noarch.rpm</filename>
        </package>
        <package name="lonely" version="0.1" release="1" epoch="0" arch="noarch" src="lonely-0.1-1.src.rpm">
          <filename>lonely-0.1-1.noarch.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
  <update from="security@example.org" status="final" type="bugfix" version="2.0">
    <id>FIX-2026:0002</id>
    <title>lonely update</title>
    <issued date="2026-01-03 00:00:00"/>
    <summary>lonely fix</summary>
    <description>Fixes lonely.</description>
    <pkglist>
      <collection short="fixture">
        <name>fixture</name>
        <package name="lonely" version="0.1" release="1" epoch="0" arch="noarch" src="lonely-0.1-1.src.rpm">
          <filename>lonely-0.1-1.noarch.rpm</filename>
        </package>
      </collection>
    </pkglist>
  </update>
</updates>
`

const compsXML = `<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE comps PUBLIC "-//Red Hat, Inc.//DTD Comps info//EN" "comps.dtd">
<comps>
  <group>
    <id>fixture-tools</id>
    <name>Fixture tools</name>
    <description>Tools.</description>
    <default>false</default>
    <uservisible>true</uservisible>
    <packagelist>
      <packagereq type="mandatory">foo</packagereq>
    </packagelist>
  </group>
</comps>
`

func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
