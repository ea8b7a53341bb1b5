// Package apt is the "apt" source kind: it mirrors suites of a Debian
// repository, verified from the signed InRelease down to every pool file,
// optionally reduced to a filtered subset with its dependency closure, and
// publishes each snapshot as a repository re-signed with mirrord's key (or,
// with verbatim, byte-identical to the upstream).
//
// A source's tree mirrors the repository layout:
//
//	dists/SUITE/{InRelease,Release,Release.gpg}
//	dists/SUITE/COMP/binary-ARCH/Packages{,.gz,.xz}
//	dists/SUITE/COMP/binary-ARCH/by-hash/SHA256/<hex>   (the same blobs)
//	pool/...                                            (upstream Filename paths)
package apt

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/signing"
	"github.com/mirrord/mirrord/internal/source"
)

// DefaultMaxIndexSize caps the decompressed size of one Packages or
// Sources index (Debian's largest is about 100 MiB).
const DefaultMaxIndexSize = 512 << 20

// DefaultPoolWorkers is how many pool downloads are queued at once (the
// fetcher's per-host limit still applies).
const DefaultPoolWorkers = 32

// Options tune a Source; zero fields take the defaults.
type Options struct {
	MaxIndexSize int64 // decompressed cap per index
	PoolWorkers  int
}

// Source mirrors one configured apt repository.
type Source struct {
	cfg     config.AptSource
	opt     Options
	base    string // repository root URL with a trailing slash
	filters []string
}

// New checks cfg (names, filter patterns, suite paths) and returns the
// source. The keyring is read at sync time.
func New(cfg config.AptSource, opt Options) (*Source, error) {
	if err := source.CheckName(cfg.Name); err != nil {
		return nil, err
	}
	if opt.MaxIndexSize <= 0 {
		opt.MaxIndexSize = DefaultMaxIndexSize
	}
	if opt.PoolWorkers <= 0 {
		opt.PoolWorkers = DefaultPoolWorkers
	}
	for _, f := range cfg.Filter {
		if _, err := path.Match(f, ""); err != nil {
			return nil, fmt.Errorf("apt/%s: filter pattern %q: %w", cfg.Name, f, err)
		}
	}
	for _, s := range append(append([]string{}, cfg.Suites...), cfg.Components...) {
		if s == "" || strings.Contains(s, "..") || strings.HasPrefix(s, "/") || strings.ContainsAny(s, " \t\n") {
			return nil, fmt.Errorf("apt/%s: suite or component %q is not a plain relative path", cfg.Name, s)
		}
	}
	if c := config.VerbatimConflicts(cfg.Verbatim, map[string]bool{"filter": len(cfg.Filter) > 0, "filter_from": cfg.FilterFrom != "", "retain": cfg.Retain != nil}); len(c) > 0 {
		return nil, fmt.Errorf("apt/%s: verbatim cannot be combined with %s (they rewrite the metadata)", cfg.Name, strings.Join(c, ", "))
	}
	if cfg.Retain != nil && cfg.Retain.Versions < 1 {
		return nil, fmt.Errorf("apt/%s: retain.versions must be at least 1", cfg.Name)
	}
	if cfg.Keyring == "" && !cfg.InsecureSkipVerify {
		return nil, fmt.Errorf("apt/%s: no keyring configured; set keyring to the upstream's public key file, or insecure_skip_verify: true to mirror without checking signatures", cfg.Name)
	}
	return &Source{cfg: cfg, opt: opt, base: strings.TrimRight(cfg.URL, "/") + "/", filters: cfg.Filter}, nil
}

// Kind implements source.Source.
func (s *Source) Kind() string { return Kind }

// Kind is the apt source kind's name.
const Kind = "apt"

// Name implements source.Source.
func (s *Source) Name() string { return s.cfg.Name }

// keyring reads the configured keyring; nil when verification is off.
func (s *Source) keyring() (openpgp.EntityList, error) {
	if s.cfg.Keyring == "" {
		return nil, nil
	}
	kr, err := signing.ReadKeyring(s.cfg.Keyring)
	if err != nil {
		return nil, fmt.Errorf("keyring for apt/%s: %w (point keyring at the upstream's public key file, e.g. /usr/share/keyrings/debian-archive-keyring.gpg)", s.cfg.Name, err)
	}
	return kr, nil
}

// layoutVersion changes when the published tree's layout or the generated
// files change, so an old snapshot's tree is not reused for a new layout.
const layoutVersion = "apt-1"

// settings is a digest of everything besides the upstream that shapes
// the tree: when it and every suite's Release are unchanged, the previous
// tree is reused as is.
func (s *Source) settings(env *source.Env, node *nodeList) string {
	c := s.cfg
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%q\n%q\n%q\n%v %v %v %q\n%q\n%v %v %v\n", layoutVersion, s.base, c.Suites, c.Components, c.Architectures,
		c.Sources, c.Udebs, c.Contents, c.Translations, c.Filter, c.FilterWithDeps, c.FilterRecommends, c.Verbatim)
	if c.DEP11 {
		fmt.Fprintf(h, "dep11\n")
	}
	if node != nil || c.FilterCheck || c.Retain != nil {
		fmt.Fprintf(h, "check %v\n", c.FilterCheck)
		if node != nil {
			fmt.Fprintf(h, "from %s\n", node.digest)
		}
		if c.Retain != nil {
			fmt.Fprintf(h, "retain %d\n", c.Retain.Versions)
		}
	}
	fmt.Fprintf(h, "%s\n%s\n", env.PublicURL, signerID(env.Signer))
	return hex.EncodeToString(h.Sum(nil))
}

func signerID(k *signing.Key) string {
	if k == nil {
		return ""
	}
	return k.Fingerprint()
}

// ClientConfig implements source.ClientConfig: a deb822 .sources stanza
// for base (".../snapshots/ID/apt/NAME" or ".../channels/C/apt/NAME").
func (s *Source) ClientConfig(base, keyURL string) string {
	var b strings.Builder
	file := "mirrord-" + s.cfg.Name
	types := "deb"
	if s.cfg.Sources {
		types = "deb deb-src"
	}
	fmt.Fprintf(&b, "# apt/%s: save as /etc/apt/sources.list.d/%s.sources\n", s.cfg.Name, file)
	if s.cfg.Verbatim {
		fmt.Fprintf(&b, "# Served verbatim: signed by the upstream's key (%s), not mirrord's.\n", s.cfg.Keyring)
		fmt.Fprintf(&b, "Types: %s\nURIs: %s/\nSuites: %s\nComponents: %s\nArchitectures: %s\nSigned-By: %s\n",
			types, base, strings.Join(s.cfg.Suites, " "), strings.Join(s.cfg.Components, " "), strings.Join(s.cfg.Architectures, " "), s.cfg.Keyring)
		return b.String()
	}
	fmt.Fprintf(&b, "# Fetch mirrord's signing key first:\n#   curl -fsSL %s -o %s\n", keyURL, KeyFile)
	fmt.Fprintf(&b, "Types: %s\nURIs: %s/\nSuites: %s\nComponents: %s\nArchitectures: %s\nSigned-By: %s\n",
		types, base, strings.Join(s.cfg.Suites, " "), strings.Join(s.cfg.Components, " "), strings.Join(s.cfg.Architectures, " "), KeyFile)
	return b.String()
}

// ClientFile implements source.ClientFiler: a deb822 .sources file, signed
// by mirrord's key unless the source is served verbatim.
func (s *Source) ClientFile() source.ClientFile {
	f := source.ClientFile{Path: "/etc/apt/sources.list.d/mirrord-" + s.cfg.Name + ".sources"}
	if !s.cfg.Verbatim {
		f.Key = KeyFile
	}
	return f
}

// KeyFile is where a node keeps mirrord's public key for apt's Signed-By.
const KeyFile = "/etc/apt/keyrings/mirrord.asc"
