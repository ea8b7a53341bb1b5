// Package config loads mirrord.yaml, the server configuration, and repos.yaml,
// a stacktira-style list of git repositories.
//
// Both are read strictly: unknown keys, wrong value types and invalid values
// are errors of type *Error naming the file, line and key path.
package config

import (
	"fmt"
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
	Auth      Auth         `yaml:"auth"`
	Signing   Signing      `yaml:"signing"`
	Apt       []AptSource  `yaml:"apt"`
	Yum       []YumSource  `yaml:"yum"`
	Git       GitConfig    `yaml:"git"`
	File      []FileSource `yaml:"file"`
	Consul    *Consul      `yaml:"consul"` // nil when absent
	Sync      SyncConfig   `yaml:"sync"`
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
	data, err := os.ReadFile(c.Auth.TokenFile)
	if err != nil {
		return "", fmt.Errorf("reading auth token: %w", err)
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
