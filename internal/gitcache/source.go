// Package gitcache is the "git" source kind: it mirrors git repositories with
// go-git, stores each snapshot's objects in the blob store as a chain of
// packs (see packs.go), and serves snapshots over read-only smart HTTP
// through C git's upload-pack from a local bare repository that any host
// builds from those packs.
//
// Cache layout, under the source's cache dir (data_dir/state/git/NAME),
// all of it rebuilt from the store when lost:
//
//	repo.git/                          bare repository
//	├── refs/heads/*, refs/tags/*      follow upstream (forced, pruned; on the syncing host)
//	├── refs/mirrord/commits/<id>      commits entries name by id
//	└── refs/namespaces/<pin>/         one ref set a snapshot recorded
//	    ├── HEAD                       symbolic, to refs/namespaces/<pin>/refs/heads/…
//	    └── refs/heads/*, refs/tags/*, refs/mirrord/commits/*
//	packs-present/pack-<sha1>          store packs whose objects repo.git holds
//	packcache/<pin>-<key>              cached full-clone responses
//	.lock                              flock: placing or pruning objects
//
// A pin is the digest of a ref set (RefSet.Pin), not a snapshot ID: a sync
// cannot know its snapshot's ID, and snapshots with the same refs share one
// namespace. The snapshot records the pin in SourceRecord.Meta["pin"].
package gitcache

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"

	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/source"
)

// Kind is the source kind this package implements.
const Kind = "git"

// DefaultTimeout bounds one repository's sync when Options.Timeout is 0.
const DefaultTimeout = 30 * time.Minute

// metaPin is the SourceRecord.Meta key holding the ref set's pin.
const metaPin = "pin"

// Repo is one repository to mirror.
type Repo struct {
	Name string
	// URL is the upstream as configured: what clients clone and what
	// `client-config` rewrites with insteadOf.
	URL string
	// BaseDir resolves a relative local path in URL (the directory of the
	// file that named it).
	BaseDir    string
	TokenFile  string // HTTP(S): password for basic auth, read at each sync
	SSHKeyFile string // ssh: private key file
	// Ref is the branch, tag or full commit id clients check out; every
	// snapshot must resolve it. "" means the upstream's HEAD.
	Ref string
	// Dest is where clients check the repository out ("" means Name).
	Dest string
	// Origin says where the repo is configured, for messages
	// ("repos.yaml:12: repo "nova" (group "openstack")").
	Origin string
}

// Options are shared by the git sources of one mirrord.
type Options struct {
	// CacheDir holds the local bare repositories, CacheDir/NAME
	// (data_dir/state/git). It is a cache of the blob store: a lost one
	// is rebuilt from the snapshots' packs.
	CacheDir string
	// Limiter bounds how many repositories fetch at once; nil: no bound
	// beyond the syncer's own.
	Limiter *Limiter
	// Timeout bounds one repository's sync; 0 means DefaultTimeout.
	Timeout time.Duration
	// Git is the C git binary ("" looks up "git" on $PATH); sync and
	// serving need it (packs, upload-pack).
	Git string
	// ReposYAML is the repos.yaml the sources come from (stacktira's
	// format; see ReposFile). Every source stores it in its tree as
	// repos.yaml, so a snapshot keeps the file it was made from and any
	// replica can serve it rewritten to the mirror.
	ReposYAML []byte
	// Retries is how many times a transient upstream failure (5xx, 429,
	// a reset, a stall) of listing or fetching is retried (sync.retries).
	Retries int
	// MaxPacks bounds a repository's pack chain in the store: a sync
	// whose previous snapshot has that many packs writes one full pack
	// instead of adding one. 0 means DefaultMaxPacks.
	MaxPacks int
}

// DefaultMaxPacks is Options.MaxPacks when unset.
const DefaultMaxPacks = 16

// Source mirrors one repository. It implements source.Source and
// source.ClientConfig.
type Source struct {
	repo     Repo
	endpoint string // what go-git fetches: URL with local paths made absolute
	opt      Options
}

// New validates r and returns its source.
func New(r Repo, opt Options) (*Source, error) {
	if err := source.CheckName(r.Name); err != nil {
		return nil, fmt.Errorf("git: %w", err)
	}
	ep, err := endpoint(r.URL, r.BaseDir)
	if err != nil {
		return nil, fmt.Errorf("git/%s: %w", r.Name, err)
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.MaxPacks <= 0 {
		opt.MaxPacks = DefaultMaxPacks
	}
	return &Source{repo: r, endpoint: ep, opt: opt}, nil
}

// endpoint returns the URL go-git should fetch. Local paths (no scheme, not
// user@host:path) become absolute; go-git's file transport runs C git's
// upload-pack on them, which accepts bare repositories and work trees.
func endpoint(raw, baseDir string) (string, error) {
	if raw == "" {
		return "", errors.New("no upstream URL")
	}
	if strings.Contains(raw, "://") || config.IsSCPLike(raw) {
		if _, err := transport.NewEndpoint(raw); err != nil {
			return "", fmt.Errorf("upstream %q: %w", raw, err)
		}
		return raw, nil
	}
	p := raw
	if !filepath.IsAbs(p) {
		p = filepath.Join(baseDir, p)
	}
	return filepath.Clean(p), nil
}

// Kind implements source.Source.
func (s *Source) Kind() string { return Kind }

// Name implements source.Source.
func (s *Source) Name() string { return s.repo.Name }

// Upstream is the upstream URL without credentials.
func (s *Source) Upstream() string {
	if u, err := url.Parse(s.endpoint); err == nil && u.Scheme != "" && u.User != nil {
		return u.Redacted()
	}
	return s.endpoint
}

func (s *Source) auth() (transport.AuthMethod, error) {
	switch {
	case s.repo.TokenFile != "":
		data, err := os.ReadFile(s.repo.TokenFile)
		if err != nil {
			return nil, fmt.Errorf("reading token_file: %w", err)
		}
		tok := strings.TrimSpace(string(data))
		if tok == "" {
			return nil, fmt.Errorf("token_file %s is empty", s.repo.TokenFile)
		}
		return &githttp.BasicAuth{Username: urlUser(s.endpoint, "mirrord"), Password: tok}, nil
	case s.repo.SSHKeyFile != "":
		a, err := gitssh.NewPublicKeysFromFile(urlUser(s.endpoint, "git"), s.repo.SSHKeyFile, "")
		if err != nil {
			return nil, fmt.Errorf("ssh_key_file %s: %w", s.repo.SSHKeyFile, err)
		}
		return a, nil
	}
	return nil, nil
}

// urlUser returns the user named in a URL or user@host:path address, or def.
func urlUser(raw, def string) string {
	if ep, err := transport.NewEndpoint(raw); err == nil && ep.User != "" {
		return ep.User
	}
	return def
}

// Limiter bounds how many repositories sync at once across git sources.
// It is safe for concurrent use.
type Limiter struct {
	slots chan struct{}
}

// NewLimiter allows n concurrent syncs (at least one).
func NewLimiter(n int) *Limiter {
	return &Limiter{slots: make(chan struct{}, max(n, 1))}
}

// acquire waits for a slot; the returned func releases it.
func (l *Limiter) acquire(ctx context.Context) (func(), error) {
	if l == nil {
		return func() {}, nil
	}
	select {
	case l.slots <- struct{}{}:
		return func() { <-l.slots }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// ClientConfig implements source.ClientConfig: git config that sends a plain
// `git clone <upstream>` to the mirror. base is ".../git/NAME"; the clone
// URL is base+".git". The upstream is matched with and without a ".git"
// suffix (git picks the longest matching insteadOf).
func (s *Source) ClientConfig(base, _ string) string {
	up := s.repo.URL
	if !strings.Contains(up, "://") && !config.IsSCPLike(up) {
		up = s.endpoint // a local path: the absolute form
	}
	alt := up + ".git"
	if trimmed, ok := strings.CutSuffix(up, ".git"); ok {
		alt = trimmed
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# git/%s: git config (add to ~/.gitconfig or /etc/gitconfig)\n", s.repo.Name)
	fmt.Fprintf(&b, "[url \"%s\"]\n", escapeConfig(base+".git"))
	fmt.Fprintf(&b, "\tinsteadOf = %s\n", gitConfigValue(up))
	fmt.Fprintf(&b, "\tinsteadOf = %s\n", gitConfigValue(alt))
	return b.String()
}

// gitConfigValue quotes v for a git config file when it needs it.
func gitConfigValue(v string) string {
	if !strings.ContainsAny(v, "\"\\;# \t") {
		return v
	}
	return `"` + escapeConfig(v) + `"`
}

// escapeConfig escapes a git config quoted string or subsection name.
func escapeConfig(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v)
}

// dir is the source's directory in the cache.
func (s *Source) dir() string { return filepath.Join(s.opt.CacheDir, s.repo.Name) }

// ClientFile implements source.ClientFiler: every git source's insteadOf
// rules go into one git-config file, included from the system gitconfig.
func (s *Source) ClientFile() source.ClientFile {
	return source.ClientFile{Path: "/etc/mirrord/gitconfig", IncludedBy: "/etc/gitconfig"}
}
