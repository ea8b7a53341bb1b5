// Package yum is the "yum" source kind: a verified mirror of a yum/dnf
// repository.
//
// A sync pins repodata/repomd.xml (its sha256 identifies the upstream
// state), checks repomd.xml.asc against the configured gpgkey, fetches
// every metadata file it lists (checksum, then open-checksum after
// decompression), streams primary.xml to learn the packages, fetches them
// concurrently (checksum from primary, then rpm header digests and the
// package signature against the gpgkey), and mirrors .treeinfo and its
// images when present. If upstream changes mid-sync, the sync re-pins once.
//
// The tree mirrors the repository layout: repodata/... and the packages at
// their location hrefs, plus RPM-GPG-KEY-upstream (the gpgkey, armored).
// Verbatim (the default without a filter) keeps upstream's repomd.xml and
// repomd.xml.asc byte for byte. With a filter, the package subset (and its
// dependency closure) gets regenerated primary, filelists, other,
// updateinfo and modules metadata and a repomd.xml signed by mirrord's key.
package yum

import (
	"fmt"
	"path"
	"strings"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/source"
)

// KeyPath is where the tree holds the upstream gpgkey, armored, for
// clients' gpgkey= lines.
const KeyPath = "RPM-GPG-KEY-upstream"

// DefaultConcurrency is how many packages a sync fetches and checks at
// once (the fetcher still bounds requests per host).
const DefaultConcurrency = 16

// Options configure one yum source (the yum: entries of mirrord.yaml).
type Options struct {
	Name string
	URL  string // the repository base URL (where repodata/ is)
	// GPGKey is the upstream's public key: a path, file:// or http(s)
	// URL. Empty only with InsecureSkipVerify.
	GPGKey string
	// InsecureSkipVerify skips the repomd.xml signature check (and allows
	// a repository without repomd.xml.asc). Packages are still checked
	// against GPGKey when one is given.
	InsecureSkipVerify bool
	// Filter lists package name patterns (path.Match syntax); empty
	// mirrors everything.
	Filter         []string
	FilterWithDeps bool
	// FilterCheck proves the published subset installs alone: every
	// requirement of every selected package is met inside it.
	FilterCheck bool
	// FilterFrom is a node's package list (rpm -qa --qf
	// '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n'): exactly those packages
	// and their dependency closure.
	FilterFrom string
	// Advisories, when set, selects the packages of the matching
	// updateinfo advisories (with their closure) and publishes only
	// those advisories.
	Advisories *Advisories
	// Retain, when above 0, keeps the newest Retain versions of each
	// package name and architecture, including versions the upstream
	// dropped since the previous snapshot.
	Retain int
	// Verbatim keeps upstream's metadata byte for byte; it cannot be
	// combined with Filter.
	Verbatim    bool
	Concurrency int // default DefaultConcurrency
}

// Source mirrors one yum repository. It is safe for concurrent use; each
// Sync works on its own state.
type Source struct {
	opt Options
	up  upstream
}

// New validates opt and returns the source.
func New(opt Options) (*Source, error) {
	if err := source.CheckName(opt.Name); err != nil {
		return nil, err
	}
	fail := func(format string, args ...any) (*Source, error) {
		return nil, fmt.Errorf("yum/%s: "+format, append([]any{opt.Name}, args...)...)
	}
	up, err := parseUpstream(opt.URL)
	if err != nil {
		return fail("%v", err)
	}
	if opt.GPGKey == "" && !opt.InsecureSkipVerify {
		return fail("no gpgkey: give the repository's signing key, or set insecure_skip_verify: true to mirror without signature checks")
	}
	if c := config.VerbatimConflicts(opt.Verbatim, map[string]bool{"filter": len(opt.Filter) > 0, "filter_from": opt.FilterFrom != "", "retain": opt.Retain > 0, "advisories": opt.Advisories != nil}); len(c) > 0 {
		return fail("verbatim cannot be combined with %s (they rewrite the metadata)", strings.Join(c, ", "))
	}
	for _, p := range opt.Filter {
		if _, err := path.Match(p, ""); err != nil || strings.TrimSpace(p) == "" {
			return fail("bad filter pattern %q: want a package name or a glob like \"python3-*\"", p)
		}
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = DefaultConcurrency
	}
	return &Source{opt: opt, up: up}, nil
}

// Kind implements source.Source.
func (s *Source) Kind() string { return Kind }

// Kind is the yum source kind's name.
const Kind = "yum"

// Name implements source.Source.
func (s *Source) Name() string { return s.opt.Name }

// subset reports whether something narrows the packages (a filter, a
// node list or advisories), as opposed to every package, regenerated.
func (s *Source) subset() bool {
	return len(s.opt.Filter) > 0 || s.opt.FilterFrom != "" || s.opt.Advisories != nil
}

// filtered reports whether this source publishes regenerated metadata.
func (s *Source) filtered() bool { return !s.opt.Verbatim }

// ClientConfig implements source.ClientConfig: a .repo stanza for base
// (".../yum/NAME"). Packages are checked against the upstream key the tree
// carries; the metadata against upstream's key (verbatim) or mirrord's
// key at keyURL (regenerated).
func (s *Source) ClientConfig(base, keyURL string) string {
	base = strings.TrimSuffix(base, "/")
	var keys []string
	gpgcheck, repoCheck := 0, 0
	if s.opt.GPGKey != "" {
		keys = append(keys, base+"/"+KeyPath)
		gpgcheck = 1
		if !s.filtered() && !s.opt.InsecureSkipVerify {
			repoCheck = 1
		}
	}
	if s.filtered() {
		keys = append(keys, keyURL)
		repoCheck = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# yum/%s: save as /etc/yum.repos.d/mirrord-%s.repo\n", s.opt.Name, s.opt.Name)
	fmt.Fprintf(&b, "[mirrord-%s]\nname=%s (mirrord)\nbaseurl=%s/\nenabled=1\n", s.opt.Name, s.opt.Name, base)
	fmt.Fprintf(&b, "gpgcheck=%d\nrepo_gpgcheck=%d\n", gpgcheck, repoCheck)
	if len(keys) > 0 {
		fmt.Fprintf(&b, "gpgkey=%s\n", strings.Join(keys, " "))
	}
	if gpgcheck == 0 {
		b.WriteString("# no gpgkey is configured for this source: packages are not signature-checked\n")
	}
	return b.String()
}

// ClientFile implements source.ClientFiler: a .repo file (its gpgkey= lines
// point at the mirror).
func (s *Source) ClientFile() source.ClientFile {
	return source.ClientFile{Path: "/etc/yum.repos.d/mirrord-" + s.opt.Name + ".repo"}
}
