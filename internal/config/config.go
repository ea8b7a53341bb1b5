// Package config loads mirrord.yaml, the server configuration, and repos.yaml,
// a stacktira-style list of git repositories.
//
// Both are read strictly: unknown keys, wrong value types and invalid values
// are errors of type *Error naming the file, line and key path.
package config

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
)

// Config is a loaded and validated mirrord.yaml. Defaults are filled in and
// relative paths are resolved against the config file's directory.
type Config struct {
	Path      string       `yaml:"-"` // the file it was loaded from
	DataDir   string       `yaml:"data_dir"`
	Listen    string       `yaml:"listen"`
	PublicURL string       `yaml:"public_url"`
	TLS       *TLS         `yaml:"tls"` // nil: plain HTTP
	Serve     ServeConfig  `yaml:"serve"`
	Auth      Auth         `yaml:"auth"`
	Signing   Signing      `yaml:"signing"`
	Apt       []AptSource  `yaml:"apt"`
	Yum       []YumSource  `yaml:"yum"`
	Git       GitConfig    `yaml:"git"`
	File      []FileSource `yaml:"file"`
	Consul    *Consul      `yaml:"consul"` // nil when absent
	Sync      SyncConfig   `yaml:"sync"`
	Store     Store        `yaml:"store"`
	Cache     Cache        `yaml:"cache"`
	Bundle    Bundle       `yaml:"bundle"`

	publicURLSet bool // public_url was in the file, not derived from listen
}

// Store kinds.
const (
	StoreFS = "fs"
	StoreS3 = "s3"
)

// Store selects and configures the blob and metadata store. Kind fs (the
// default) keeps everything under data_dir; kind s3 keeps it in a bucket,
// and data_dir becomes a cache.
type Store struct {
	Kind      string `yaml:"kind"`
	Endpoint  string `yaml:"endpoint"` // "" uses AWS's endpoint for Region
	Bucket    string `yaml:"bucket"`
	Prefix    string `yaml:"prefix"` // key prefix, normalised to end in "/" when set
	Region    string `yaml:"region"`
	PathStyle bool   `yaml:"path_style"`
	// AccessKeyID with SecretAccessKeyFile are static credentials; without
	// AccessKeyID the standard AWS environment / shared-credentials chain
	// is used.
	AccessKeyID         string `yaml:"access_key_id"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`
	// Redirect answers blob GETs with a 302 to a presigned URL.
	Redirect bool `yaml:"redirect"`
}

// SecretAccessKey returns the trimmed content of secret_access_key_file
// ("" when unset).
func (s Store) SecretAccessKey() (string, error) {
	if s.SecretAccessKeyFile == "" {
		return "", nil
	}
	b, err := os.ReadFile(s.SecretAccessKeyFile)
	if err != nil {
		return "", fmt.Errorf("store.secret_access_key_file: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if key == "" {
		return "", fmt.Errorf("store.secret_access_key_file %s is empty", s.SecretAccessKeyFile)
	}
	return key, nil
}

// Cache bounds the local read cache of an s3 store (under data_dir).
type Cache struct {
	MaxSize ByteSize `yaml:"max_size"` // default DefaultCacheMax
}

// Bundle configures air-gap imports.
type Bundle struct {
	// Keyring holds the OpenPGP public keys (armored or binary) whose
	// signed bundles `mirrord import` accepts without --keyring.
	Keyring string `yaml:"keyring"`
}

// TLS makes serve speak HTTPS on listen with this certificate (PEM; the
// chain may follow the leaf) and private key.
type TLS struct {
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// ServeConfig bounds what clients of serve may hold.
type ServeConfig struct {
	// MaxConnections caps open client connections (default 10000);
	// past it new connections wait in the kernel's accept queue.
	MaxConnections int `yaml:"max_connections"`
	// HeaderTimeout is how long a client has to send its request
	// headers (default 10s): a slowloris client is cut off after it.
	HeaderTimeout Duration `yaml:"header_timeout"`
}

// Auth configures the token required for write operations.
type Auth struct {
	TokenFile string `yaml:"token_file"`
	Token     string `yaml:"token"` // inline; prefer TokenFile
}

// Signing configures the key used to sign published metadata.
type Signing struct {
	KeyFile string `yaml:"key_file"`
}

// AptSource mirrors one apt repository.
type AptSource struct {
	Name               string   `yaml:"name"`
	URL                string   `yaml:"url"`
	Suites             []string `yaml:"suites"`
	Components         []string `yaml:"components"`
	Architectures      []string `yaml:"architectures"`
	Keyring            string   `yaml:"keyring"`
	InsecureSkipVerify bool     `yaml:"insecure_skip_verify"`
	Sources            bool     `yaml:"sources"`
	Udebs              bool     `yaml:"udebs"`
	Translations       []string `yaml:"translations"`
	Contents           bool     `yaml:"contents"`
	// DEP11 also mirrors the AppStream metadata (dep11/Components-ARCH.yml,
	// icons) the Release lists.
	DEP11            bool     `yaml:"dep11"`
	Filter           []string `yaml:"filter"`
	FilterWithDeps   bool     `yaml:"filter_with_deps"`
	FilterRecommends bool     `yaml:"filter_recommends"`
	// FilterCheck proves after the sync that every filtered package
	// installs from the published indices alone.
	FilterCheck bool `yaml:"filter_check"`
	// FilterFrom is a node's package list (dpkg-query -W -f
	// '${Package}=${Version}\n'): exactly those versions and their closure.
	FilterFrom string  `yaml:"filter_from"`
	Retain     *Retain `yaml:"retain"`
	Verbatim   bool    `yaml:"verbatim"`
}

// Retain keeps older versions of packages in new snapshots after the
// upstream dropped them.
type Retain struct {
	// Versions is how many versions of each package (per suite,
	// component and architecture) a snapshot keeps, newest first.
	Versions int `yaml:"versions"`
}

// YumSource mirrors one yum/dnf repository.
type YumSource struct {
	Name               string   `yaml:"name"`
	URL                string   `yaml:"url"`
	GPGKey             string   `yaml:"gpgkey"`
	InsecureSkipVerify bool     `yaml:"insecure_skip_verify"`
	Filter             []string `yaml:"filter"`
	FilterWithDeps     bool     `yaml:"filter_with_deps"`
	// FilterCheck proves after the sync that every filtered package
	// installs from the published metadata alone.
	FilterCheck bool `yaml:"filter_check"`
	// FilterFrom is a node's package list (rpm -qa --qf
	// '%{NAME}-%{VERSION}-%{RELEASE}.%{ARCH}\n'): exactly those and their closure.
	FilterFrom string `yaml:"filter_from"`
	// Advisories selects the packages of matching updateinfo advisories.
	Advisories *Advisories `yaml:"advisories"`
	Retain     *Retain     `yaml:"retain"`
	Verbatim   *bool       `yaml:"verbatim"` // nil: see IsVerbatim
}

// Advisories selects updateinfo advisories by type and severity.
type Advisories struct {
	Types      []string `yaml:"types"`      // security, bugfix, enhancement, newpackage
	Severities []string `yaml:"severities"` // e.g. Critical, Important; empty: any
}

// IsVerbatim reports whether the repository is mirrored verbatim: the
// explicit setting, or by default true exactly when there is no filter.
func (y YumSource) IsVerbatim() bool {
	if y.Verbatim != nil {
		return *y.Verbatim
	}
	return len(y.Filter) == 0 && y.FilterFrom == "" && y.Advisories == nil && y.Retain == nil
}

// GitConfig lists git repositories inline and/or in a repos.yaml file.
type GitConfig struct {
	ReposFile string    `yaml:"repos_file"`
	Repos     []GitRepo `yaml:"repos"`
}

// GitRepo mirrors one git repository.
type GitRepo struct {
	Name       string `yaml:"name"`
	URL        string `yaml:"url"`
	Dest       string `yaml:"dest"`
	Ref        string `yaml:"ref"`
	TokenFile  string `yaml:"token_file"`
	SSHKeyFile string `yaml:"ssh_key_file"`

	// Where the repo is defined: the file, the line of its entry (of its
	// git.repos item when inline) and, in a repos.yaml, its group.
	File  string `yaml:"-"`
	Line  int    `yaml:"-"`
	Group string `yaml:"-"`
}

// Origin names where r is defined, for messages: "repos.yaml:12: repo
// "nova" (group "openstack")".
func (r GitRepo) Origin() string {
	at := r.File
	if r.Line > 0 {
		at = fmt.Sprintf("%s:%d", r.File, r.Line)
	}
	if r.Group == "" {
		return fmt.Sprintf("%s: repo %q", at, r.Name)
	}
	return fmt.Sprintf("%s: repo %q (group %q)", at, r.Name, r.Group)
}

// FileSource mirrors a fixed set of files pinned by checksum.
type FileSource struct {
	Name  string      `yaml:"name"`
	Files []FileEntry `yaml:"files"`
}

// FileEntry is one pinned file.
type FileEntry struct {
	URL    string `yaml:"url"`
	SHA256 string `yaml:"sha256"` // lowercase hex
	Path   string `yaml:"path"`   // relative path inside the source
}

// Consul configures service registration in Consul.
type Consul struct {
	Address    string `yaml:"address"`
	Token      string `yaml:"token"`
	Service    string `yaml:"service"`
	Datacenter string `yaml:"datacenter"`
	Prefix     string `yaml:"prefix"`
	// CheckInterval is how often Consul checks /healthz (default 10s); it
	// bounds how fast another replica takes over scheduled syncs.
	CheckInterval Duration `yaml:"check_interval"`
}

// SyncConfig controls scheduled syncing.
type SyncConfig struct {
	Interval    Duration `yaml:"interval"` // 0: no schedule
	Concurrency int      `yaml:"concurrency"`
	PerHost     int      `yaml:"per_host"`
	Retries     int      `yaml:"retries"`
	Timeout     Duration `yaml:"timeout"` // 0: none
	// ReadTimeout bounds how long a download may wait for the next byte
	// from an upstream, for headers or mid-body (default 60s): a stalled
	// upstream fails the attempt, which is retried, instead of hanging
	// the sync.
	ReadTimeout Duration `yaml:"read_timeout"`
}

// Load reads and validates the config file at path. Relative paths in it are
// resolved against the absolute directory of path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return parse(path, filepath.Dir(abs), data)
}

// Parse is Load from bytes: name is used in messages and its directory to
// resolve relative paths. Empty data yields the defaults.
func Parse(name string, data []byte) (*Config, error) {
	return parse(name, filepath.Dir(name), data)
}

func parse(name, dir string, data []byte) (*Config, error) {
	root, err := parseYAML(name, data)
	if err != nil {
		return nil, err
	}
	cfg := &Config{Path: name}
	d := newDecoder(name)
	if root != nil {
		d.lines[""] = root.Line
		d.value(root, reflect.ValueOf(cfg).Elem(), "")
	}
	if err := d.err(); err != nil {
		return nil, err
	}
	v := &validator{errList: d.errList, lines: d.lines, nulls: d.nulls, dir: dir}
	v.config(cfg)
	if err := v.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// Token returns the auth token: the trimmed content of auth.token_file, the
// inline auth.token, or "" when neither is configured.
func (c *Config) Token() (string, error) {
	if c.Auth.TokenFile == "" {
		return strings.TrimSpace(c.Auth.Token), nil
	}
	f, err := os.Open(c.Auth.TokenFile)
	if err != nil {
		return "", fmt.Errorf("reading auth token: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("reading auth token: %w", err)
	}
	if mode := fi.Mode().Perm(); mode&0o007 != 0 {
		return "", fmt.Errorf("auth token file %s has mode %04o: other users may read or change it; refusing to start (run: chmod 600 %s, or 640 with a group mirrord runs in)", c.Auth.TokenFile, mode, c.Auth.TokenFile)
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", fmt.Errorf("reading auth token %s: %w", c.Auth.TokenFile, err)
	}
	tok := strings.TrimSpace(string(data))
	if tok == "" {
		return "", fmt.Errorf("auth token file %s is empty", c.Auth.TokenFile)
	}
	return tok, nil
}

// SourceNames lists every configured source as "kind/name" (apt, yum, git,
// file; git covers inline repos only), kinds in that order, each in file order.
func (c *Config) SourceNames() []string {
	var names []string
	for _, s := range c.Apt {
		names = append(names, "apt/"+s.Name)
	}
	for _, s := range c.Yum {
		names = append(names, "yum/"+s.Name)
	}
	for _, r := range c.Git.Repos {
		names = append(names, "git/"+r.Name)
	}
	for _, s := range c.File {
		names = append(names, "file/"+s.Name)
	}
	return names
}

// GitRepos returns the inline git repos followed by those of git.repos_file
// (when set, loaded now), failing if a name appears in both.
func (c *Config) GitRepos() ([]GitRepo, error) {
	repos := slices.Clone(c.Git.Repos)
	if c.Git.ReposFile == "" {
		return repos, nil
	}
	more, err := LoadRepos(c.Git.ReposFile)
	if err != nil {
		return nil, err
	}
	for _, r := range more {
		if slices.ContainsFunc(repos, func(x GitRepo) bool { return x.Name == r.Name }) {
			return nil, fmt.Errorf("%s: git repo %q is defined both inline in %s and in the repos file", c.Git.ReposFile, r.Name, c.Path)
		}
	}
	return append(repos, more...), nil
}
