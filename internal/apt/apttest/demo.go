package apttest

// Demo is a small package set exercising what apt's resolver and
// mirrord's dependency closure must handle: Pre-Depends, alternatives
// whose first choice does not exist, a virtual package, a versioned
// Provides, ":any" on a Multi-Arch: allowed package, an epoch, '~'
// versions, an arch-all package, a version constraint that excludes an
// older version, and packages outside the closure.
func Demo() []Package {
	return []Package{
		{Name: "demo-app", Version: "1.0-1",
			PreDepends: "demo-base (>= 1:0)",
			Depends:    "demo-lib (>= 1.0), demo-alt-a | demo-alt-b, mail-transport-agent, demo-py:any (>= 3.11~), demo-virt (>= 1.5)",
			Recommends: "demo-extra"},
		{Name: "demo-base", Version: "2:0.9-1"},
		{Name: "demo-lib", Version: "1.2~rc1-1", Depends: "demo-data"},
		{Name: "demo-lib", Version: "0.9-1", Depends: "demo-data"},
		{Name: "demo-data", Version: "1.0-1", Arch: "all"},
		{Name: "demo-alt-b", Version: "1.0-1"},
		{Name: "demo-mta", Version: "1.0-1", Provides: "mail-transport-agent"},
		{Name: "demo-py", Version: "3.11.2-1", MultiArch: "allowed"},
		{Name: "demo-vprov", Version: "1.0-1", Provides: "demo-virt (= 2.0)"},
		{Name: "demo-extra", Version: "1.0-1"},
		{Name: "other-tool", Version: "1.0-1", Depends: "other-lib"},
		{Name: "other-lib", Version: "1.0-1"},
	}
}

// DemoClosure is the closure of filter [demo-app] with dependencies
// (without Recommends), as "NAME VERSION".
func DemoClosure() []string {
	return []string{
		"demo-alt-b 1.0-1", "demo-app 1.0-1", "demo-base 2:0.9-1", "demo-data 1.0-1", "demo-lib 1.2~rc1-1",
		"demo-mta 1.0-1", "demo-py 3.11.2-1", "demo-vprov 1.0-1",
	}
}
