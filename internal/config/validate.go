package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by Load and Parse.
const (
	DefaultDataDir     = "./data"
	DefaultListen      = "127.0.0.1:8080"
	DefaultConcurrency = 8
	DefaultPerHost     = 4
	DefaultRetries     = 3
	DefaultConsulName  = "mirrord"
	DefaultConsulKV    = "mirrord/"
	DefaultCacheMax    = 20 << 30 // cache.max_size
	// serve: limits (see ServeConfig)
	DefaultMaxConnections = 10000
	DefaultHeaderTimeout  = 10 * time.Second
	// sync.read_timeout (see SyncConfig)
	DefaultReadTimeout = 60 * time.Second
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	sha256RE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidName reports whether s is a valid source name: lowercase letters,
// digits, '.', '_' and '-', starting with a letter or digit. It is the one
// rule for names; source.CheckName applies it too.
func ValidName(s string) bool { return nameRE.MatchString(s) }

var nameJunk = regexp.MustCompile(`[^a-z0-9._-]+`)

// MakeName turns s into a valid source name (lowercased, other characters
// become '-'), "repo" when nothing is left, and unique among used (a "-2",
// "-3", … suffix), which it records.
func MakeName(used map[string]bool, s string) string {
	name := strings.Trim(nameJunk.ReplaceAllString(strings.ToLower(s), "-"), "-._")
	if name == "" {
		name = "repo"
	}
	n := name
	for i := 2; used[n]; i++ {
		n = name + "-" + strconv.Itoa(i)
	}
	used[n] = true
	return n
}

// validator checks a decoded Config, fills in defaults and resolves paths.
type validator struct {
	errList
	lines map[string]int
	nulls map[string]bool
	dir   string // directory relative paths are resolved against
}

// line returns the line of path, or of its nearest ancestor that was set.
func (v *validator) line(p string) int {
	for {
		if l, ok := v.lines[p]; ok {
			return l
		}
		if p == "" {
			return 0
		}
		p = parentPath(p)
	}
}

// set reports whether the key path was present in the file and not null.
func (v *validator) set(p string) bool {
	_, ok := v.lines[p]
	return ok && !v.nulls[p]
}

func (v *validator) fail(p, format string, args ...any) {
	v.add(v.line(p), p, "%s: %s", p, fmt.Sprintf(format, args...))
}

// resolve makes a relative file path relative to the config directory.
func (v *validator) resolve(p string) string {
	if p == "" || filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(v.dir, p)
}

// resolveRef is resolve for values that may also be URLs (left alone).
func (v *validator) resolveRef(p string) string {
	if strings.Contains(p, "://") {
		return p
	}
	return v.resolve(p)
}

func (v *validator) config(c *Config) {
	v.server(c)
	v.aptSources(c.Apt)
	v.yumSources(c.Yum)
	v.git(&c.Git)
	v.fileSources(c.File)
	v.consul(c.Consul)
	v.sync(&c.Sync)
	v.store(&c.Store)
	v.cache(c)
}

func (v *validator) server(c *Config) {
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	c.DataDir = v.resolve(c.DataDir)
	v.listen(c)
	if c.Auth.TokenFile != "" && c.Auth.Token != "" {
		v.fail("auth.token", "set only one of token_file and token (prefer token_file)")
	}
	c.Auth.TokenFile = v.resolve(c.Auth.TokenFile)
	v.tls(c)
	v.count("serve.max_connections", &c.Serve.MaxConnections, DefaultMaxConnections, 1)
	switch {
	case c.Serve.HeaderTimeout.Duration < 0:
		v.fail("serve.header_timeout", "must not be negative")
	case c.Serve.HeaderTimeout.Duration == 0:
		c.Serve.HeaderTimeout.Duration = DefaultHeaderTimeout
	}
	if c.Signing.KeyFile == "" {
		c.Signing.KeyFile = filepath.Join(c.DataDir, "signing", "mirrord.asc")
	}
	c.Signing.KeyFile = v.resolve(c.Signing.KeyFile)
	c.Bundle.Keyring = v.resolve(c.Bundle.Keyring)
}

func (v *validator) listen(c *Config) {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	host, port, err := net.SplitHostPort(c.Listen)
	if err != nil {
		v.fail("listen", "invalid address %q: want host:port, e.g. %q", c.Listen, DefaultListen)
		return
	}
	if c.PublicURL == "" {
		c.PublicURL = urlForListen(host, port, c.TLS != nil)
	} else {
		c.publicURLSet = true
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if err := checkHTTPURL(c.PublicURL); err != nil {
		v.fail("public_url", "%v", err)
	}
}

// urlForListen is the default public_url for a listener on host:port
// (https when tls: is set).
func urlForListen(host, port string, tls bool) string {
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	return scheme + net.JoinHostPort(host, port)
}

// SetListen overrides listen (serve --listen). Unless the file sets
// public_url, public_url follows the new address.
func (c *Config) SetListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("listen address %q: want host:port, e.g. %q", addr, DefaultListen)
	}
	c.Listen = addr
	if !c.publicURLSet {
		c.PublicURL = urlForListen(host, port, c.TLS != nil)
	}
	return nil
}

// tls requires both files of a tls: block; the files themselves are read
// (and their errors reported) when serve starts.
func (v *validator) tls(c *Config) {
	t := c.TLS
	if t == nil {
		return
	}
	if t.CertFile == "" {
		v.fail("tls.cert_file", "required with tls: (the PEM certificate, chain after the leaf)")
	}
	if t.KeyFile == "" {
		v.fail("tls.key_file", "required with tls: (the PEM private key of cert_file)")
	}
	t.CertFile, t.KeyFile = v.resolve(t.CertFile), v.resolve(t.KeyFile)
}

// checkHTTPURL checks that s is an absolute http or https URL.
func checkHTTPURL(s string) error {
	if s == "" {
		return errors.New("required")
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid URL %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("invalid URL %q: must start with http:// or https://", s)
	}
	if u.Host == "" {
		return fmt.Errorf("invalid URL %q: missing host", s)
	}
	return nil
}

// name checks a source name and its uniqueness among seen (name -> path).
func (v *validator) name(seen map[string]string, p, name string) {
	p += ".name"
	switch prev, dup := seen[name]; {
	case name == "":
		v.fail(p, "required")
	case !ValidName(name):
		v.fail(p, "invalid name %q: use lowercase letters, digits, '.', '_' and '-', starting with a letter or digit", name)
	case dup:
		v.fail(p, "duplicate name %q (also used by %s at line %d)", name, parentPath(prev), v.line(prev))
	default:
		seen[name] = p
	}
}

func (v *validator) httpURL(p, s string) {
	if err := checkHTTPURL(s); err != nil {
		v.fail(p, "%v", err)
	}
}

// verifyKey requires a key (keyring/gpgkey) unless verification is skipped.
func (v *validator) verifyKey(p, key, value string, insecure bool) {
	if value == "" && !insecure {
		v.fail(p+"."+key, "required: add %q with the repository's signing key, or %q to mirror without checking signatures",
			key+": /path/to/key", "insecure_skip_verify: true")
	}
}

func (v *validator) aptSources(srcs []AptSource) {
	seen := map[string]string{}
	for i := range srcs {
		p := fmt.Sprintf("apt[%d]", i)
		v.name(seen, p, srcs[i].Name)
		v.apt(p, &srcs[i])
	}
}

func (v *validator) apt(p string, s *AptSource) {
	v.httpURL(p+".url", s.URL)
	if len(s.Suites) == 0 {
		v.fail(p+".suites", "at least one suite is required, e.g. suites: [bookworm]")
	}
	v.nonEmpty(p+".suites", s.Suites)
	if len(s.Components) == 0 {
		s.Components = []string{"main"}
	}
	if len(s.Architectures) == 0 {
		s.Architectures = []string{"amd64"}
	}
	v.verifyKey(p, "keyring", s.Keyring, s.InsecureSkipVerify)
	s.Keyring = v.resolveRef(s.Keyring)
	v.subset(p, subsetKeys{filter: len(s.Filter) > 0, withDeps: s.FilterWithDeps, check: s.FilterCheck, from: &s.FilterFrom,
		retain: s.Retain, verbatim: s.Verbatim})
}

// subsetKeys are the keys apt and yum sources share for subsets.
type subsetKeys struct {
	filter, withDeps, check, verbatim, advisories bool
	from                                          *string
	retain                                        *Retain
}

// VerbatimConflicts is the one rule for verbatim sources: of the subset
// keys set (key → set), it returns those verbatim: true cannot have, in
// order, since they rewrite the metadata verbatim serves untouched.
func VerbatimConflicts(verbatim bool, set map[string]bool) []string {
	if !verbatim {
		return nil
	}
	var out []string
	for _, k := range []string{"filter", "filter_from", "retain", "advisories"} {
		if set[k] {
			out = append(out, k)
		}
	}
	return out
}

// subset checks filter_check, filter_from and retain.
func (v *validator) subset(p string, k subsetKeys) {
	if k.check && !(k.filter || *k.from != "") {
		v.fail(p+".filter_check", "filter_check needs a filter or filter_from to check")
	} else if k.check && k.filter && !k.withDeps && *k.from == "" {
		v.fail(p+".filter_check", "filter_check needs filter_with_deps: true (without the dependencies a subset cannot install alone)")
	}
	*k.from = v.resolve(*k.from)
	for _, key := range VerbatimConflicts(k.verbatim, map[string]bool{"filter": k.filter, "filter_from": *k.from != "", "retain": k.retain != nil, "advisories": k.advisories}) {
		v.fail(p+".verbatim", "verbatim: true cannot be combined with %s (it rewrites the metadata that verbatim serves untouched)", key)
	}
	if k.retain != nil && k.retain.Versions < 1 {
		v.fail(p+".retain.versions", "must be at least 1 (how many versions of each package to keep), e.g. retain: {versions: 3}")
	}
}

// nonEmpty rejects empty strings in a list.
func (v *validator) nonEmpty(p string, list []string) {
	for i, s := range list {
		if s == "" {
			v.fail(fmt.Sprintf("%s[%d]", p, i), "must not be empty")
		}
	}
}

func (v *validator) yumSources(srcs []YumSource) {
	seen := map[string]string{}
	for i := range srcs {
		s := &srcs[i]
		p := fmt.Sprintf("yum[%d]", i)
		v.name(seen, p, s.Name)
		v.httpURL(p+".url", s.URL)
		v.verifyKey(p, "gpgkey", s.GPGKey, s.InsecureSkipVerify)
		s.GPGKey = v.resolveRef(s.GPGKey)
		v.subset(p, subsetKeys{filter: len(s.Filter) > 0, withDeps: s.FilterWithDeps, check: s.FilterCheck, from: &s.FilterFrom,
			retain: s.Retain, advisories: s.Advisories != nil, verbatim: s.Verbatim != nil && *s.Verbatim})
		v.advisories(p, s)
	}
}

func (v *validator) git(g *GitConfig) {
	g.ReposFile = v.resolve(g.ReposFile)
	seen := map[string]string{}
	for i := range g.Repos {
		r := &g.Repos[i]
		p := fmt.Sprintf("git.repos[%d]", i)
		v.name(seen, p, r.Name)
		if err := checkGitURL(r.URL); err != nil {
			v.fail(p+".url", "%v", err)
		}
		if r.Dest != "" {
			if err := checkRelPath(r.Dest); err != nil {
				v.fail(p+".dest", "%v", err)
			}
		}
		r.TokenFile = v.resolve(r.TokenFile)
		r.SSHKeyFile = v.resolve(r.SSHKeyFile)
		r.File = v.file
	}
}

func (v *validator) fileSources(srcs []FileSource) {
	seen := map[string]string{}
	for i := range srcs {
		s := &srcs[i]
		p := fmt.Sprintf("file[%d]", i)
		v.name(seen, p, s.Name)
		if len(s.Files) == 0 {
			v.fail(p+".files", "at least one file is required")
		}
		paths := map[string]string{}
		for j := range s.Files {
			v.fileEntry(paths, fmt.Sprintf("%s.files[%d]", p, j), &s.Files[j])
		}
	}
}

func (v *validator) fileEntry(paths map[string]string, p string, f *FileEntry) {
	v.fileURL(p+".url", f)
	f.SHA256 = strings.ToLower(f.SHA256)
	switch {
	case f.SHA256 == "":
		v.fail(p+".sha256", "required (the file's sha256 as 64 hex digits)")
	case !sha256RE.MatchString(f.SHA256):
		v.fail(p+".sha256", "invalid checksum %q: want 64 hex digits", f.SHA256)
	}
	if f.Path == "" {
		f.Path = urlBase(f.URL)
		if f.Path == "" {
			v.fail(p+".path", "cannot derive a file name from url %q: set path", f.URL)
			return
		}
	}
	if err := checkRelPath(f.Path); err != nil {
		v.fail(p+".path", "%v", err)
		return
	}
	if prev, dup := paths[f.Path]; dup {
		v.fail(p+".path", "duplicate path %q (also used by %s at line %d)", f.Path, prev, v.line(prev))
		return
	}
	paths[f.Path] = p
}

// fileURL accepts http(s):// and file:// URLs, and local paths, which it
// resolves against the config directory and turns into file:// URLs.
func (v *validator) fileURL(p string, f *FileEntry) {
	switch {
	case f.URL == "":
		v.fail(p, "required (an http(s):// or file:// URL, or a local path)")
	case strings.HasPrefix(f.URL, "file://"):
		if u, err := url.Parse(f.URL); err != nil || !path.IsAbs(u.Path) {
			v.fail(p, "invalid file URL %q: want file:///absolute/path", f.URL)
		}
	case !strings.Contains(f.URL, "://"):
		if strings.ContainsRune(f.URL, 0) {
			v.fail(p, "invalid path %q: contains a NUL byte", f.URL)
			return
		}
		f.URL = (&url.URL{Scheme: "file", Path: filepath.ToSlash(v.resolve(f.URL))}).String()
	default:
		v.httpURL(p, f.URL)
	}
}

// urlBase returns the last segment of the URL's path, or "" if none.
func urlBase(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Path == "" || strings.HasSuffix(u.Path, "/") {
		return ""
	}
	return path.Base(u.Path)
}

// checkRelPath checks a slash-separated relative path that must stay inside
// its root: clean, no leading '/', no ".." segments, no NUL bytes.
func checkRelPath(p string) error {
	switch {
	case p == "":
		return errors.New("must not be empty")
	case strings.ContainsRune(p, 0):
		return fmt.Errorf("invalid path %q: contains a NUL byte", p)
	case strings.HasPrefix(p, "/"):
		return fmt.Errorf("invalid path %q: must be relative (no leading /)", p)
	case p == ".." || strings.HasPrefix(p, "../") || strings.HasSuffix(p, "/..") || strings.Contains(p, "/../"):
		return fmt.Errorf("invalid path %q: must not contain .. segments", p)
	case path.Clean(p) != p || p == ".":
		return fmt.Errorf("invalid path %q: not clean (want %q)", p, path.Clean(p))
	}
	return nil
}

// checkGitURL accepts http(s)://, ssh://, git:// and file:// URLs, scp-like
// [user@]host:path addresses and local paths.
func checkGitURL(s string) error {
	switch {
	case s == "":
		return errors.New("required")
	case strings.ContainsRune(s, 0):
		return fmt.Errorf("invalid git URL %q: contains a NUL byte", s)
	case strings.Contains(s, "://"):
		return checkSchemeURL(s)
	case IsSCPLike(s):
		return checkSCP(s)
	}
	return nil
}

func checkSchemeURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("invalid git URL %q: %w", s, err)
	}
	switch u.Scheme {
	case "http", "https", "ssh", "git":
		if u.Host == "" {
			return fmt.Errorf("invalid git URL %q: missing host", s)
		}
	case "file":
		if u.Path == "" {
			return fmt.Errorf("invalid git URL %q: missing path", s)
		}
	default:
		return fmt.Errorf("invalid git URL %q: unsupported scheme %q (use https, http, ssh, git, file, user@host:path or a local path)", s, u.Scheme)
	}
	return nil
}

// IsSCPLike reports whether s is git's scp-like address, [user@]host:path:
// a colon after at least one character and before any slash. It is the one
// rule for both the config check and the git kind.
func IsSCPLike(s string) bool {
	c := strings.IndexByte(s, ':')
	slash := strings.IndexByte(s, '/')
	return c > 0 && (slash < 0 || c < slash) && !strings.Contains(s, "://")
}

func checkSCP(s string) error {
	hostPart, p, _ := strings.Cut(s, ":")
	_, host, hasUser := strings.Cut(hostPart, "@")
	if !hasUser {
		host = hostPart
	}
	if host == "" || p == "" {
		return fmt.Errorf("invalid git URL %q: want user@host:path", s)
	}
	return nil
}

func (v *validator) consul(c *Consul) {
	if c == nil {
		return
	}
	if c.Service == "" {
		c.Service = DefaultConsulName
	}
	if c.Prefix == "" {
		c.Prefix = DefaultConsulKV
	}
	switch {
	case c.CheckInterval.Duration < 0:
		v.fail("consul.check_interval", "must not be negative")
	case c.CheckInterval.Duration == 0:
		c.CheckInterval.Duration = 10 * time.Second
	}
}

func (v *validator) sync(s *SyncConfig) {
	v.count("sync.concurrency", &s.Concurrency, DefaultConcurrency, 1)
	v.count("sync.per_host", &s.PerHost, DefaultPerHost, 1)
	v.count("sync.retries", &s.Retries, DefaultRetries, 0)
	if s.Interval.Duration < 0 {
		v.fail("sync.interval", "must not be negative")
	}
	if s.Timeout.Duration < 0 {
		v.fail("sync.timeout", "must not be negative")
	}
	switch {
	case s.ReadTimeout.Duration < 0:
		v.fail("sync.read_timeout", "must not be negative")
	case s.ReadTimeout.Duration == 0:
		s.ReadTimeout.Duration = DefaultReadTimeout
	}
}

// count applies def when the key is absent, else checks n >= lowest.
func (v *validator) count(p string, n *int, def, lowest int) {
	if !v.set(p) {
		*n = def
		return
	}
	if *n < lowest {
		v.fail(p, "must be at least %d, got %d", lowest, *n)
	}
}

var (
	bucketRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	s3PrefixRE = regexp.MustCompile(`^[A-Za-z0-9._/-]*$`)
)

func (v *validator) store(s *Store) {
	if s.Kind == "" {
		s.Kind = StoreFS
	}
	switch s.Kind {
	case StoreFS:
		s3Only := map[string]bool{
			"endpoint": s.Endpoint != "", "bucket": s.Bucket != "", "prefix": s.Prefix != "", "region": s.Region != "",
			"path_style": s.PathStyle, "access_key_id": s.AccessKeyID != "", "secret_access_key_file": s.SecretAccessKeyFile != "",
			"redirect": s.Redirect,
		}
		for _, k := range []string{"endpoint", "bucket", "prefix", "region", "path_style", "access_key_id", "secret_access_key_file", "redirect"} {
			if s3Only[k] {
				v.fail("store."+k, "only used with kind: s3 (the fs store keeps everything under data_dir)")
			}
		}
		return
	case StoreS3:
	default:
		v.fail("store.kind", "unknown store kind %q: want %q or %q", s.Kind, StoreFS, StoreS3)
		return
	}
	switch {
	case s.Bucket == "":
		v.fail("store.bucket", "required with kind: s3, e.g. bucket: mirrord")
	case !bucketRE.MatchString(s.Bucket) || strings.Contains(s.Bucket, ".."):
		v.fail("store.bucket", "invalid bucket name %q: 3-63 lowercase letters, digits, '.' and '-'", s.Bucket)
	}
	if s.Endpoint != "" {
		if err := checkHTTPURL(s.Endpoint); err != nil {
			v.fail("store.endpoint", "%v", err)
		}
	}
	if s.Region == "" {
		s.Region = "us-east-1"
	}
	v.s3Prefix(s)
	switch {
	case s.AccessKeyID != "" && s.SecretAccessKeyFile == "":
		v.fail("store.access_key_id", "needs secret_access_key_file (or drop both to use the AWS environment / shared credentials)")
	case s.AccessKeyID == "" && s.SecretAccessKeyFile != "":
		v.fail("store.secret_access_key_file", "needs access_key_id (or drop both to use the AWS environment / shared credentials)")
	}
	s.SecretAccessKeyFile = v.resolve(s.SecretAccessKeyFile)
}

// s3Prefix checks store.prefix and normalises it to end in "/".
func (v *validator) s3Prefix(s *Store) {
	if s.Prefix == "" {
		return
	}
	if !s3PrefixRE.MatchString(s.Prefix) || strings.HasPrefix(s.Prefix, "/") || strings.Contains(s.Prefix, "//") {
		v.fail("store.prefix", "invalid prefix %q: letters, digits, '.', '_', '-' and '/' separators, not starting with '/'", s.Prefix)
		return
	}
	for _, seg := range strings.Split(strings.TrimSuffix(s.Prefix, "/"), "/") {
		if seg == "." || seg == ".." {
			v.fail("store.prefix", "invalid prefix %q: no '.' or '..' segments", s.Prefix)
			return
		}
	}
	if !strings.HasSuffix(s.Prefix, "/") {
		s.Prefix += "/"
	}
}

func (v *validator) cache(c *Config) {
	switch {
	case c.Cache.MaxSize != 0 && c.Store.Kind != StoreS3:
		v.fail("cache.max_size", "only used with store kind: s3 (the read cache of blobs fetched from the bucket)")
	case c.Cache.MaxSize < 0:
		v.fail("cache.max_size", "must not be negative")
	case c.Cache.MaxSize == 0 && !v.set("cache.max_size") && c.Store.Kind == StoreS3:
		c.Cache.MaxSize = DefaultCacheMax
	}
}

// advisoryTypes are the <update type="..."> values of updateinfo.xml.
var advisoryTypes = []string{"security", "bugfix", "enhancement", "newpackage"}

func (v *validator) advisories(p string, s *YumSource) {
	a := s.Advisories
	if a == nil {
		return
	}
	if len(a.Types) == 0 {
		v.fail(p+".advisories.types", "at least one advisory type is required, e.g. types: [security]")
	}
	for i, t := range a.Types {
		if !slicesContainsFold(advisoryTypes, t) {
			v.fail(fmt.Sprintf("%s.advisories.types[%d]", p, i), "unknown advisory type %q (want one of %s)", t, strings.Join(advisoryTypes, ", "))
		}
	}
	v.nonEmpty(p+".advisories.severities", a.Severities)
}

func slicesContainsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}
