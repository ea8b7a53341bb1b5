package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func ptr[T any](v T) *T { return &v }

func TestLoadFull(t *testing.T) {
	cfg, err := Load("testdata/mirrord.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	want := &Config{
		Path:         "testdata/mirrord.yaml",
		DataDir:      "/var/lib/mirrord",
		Listen:       "0.0.0.0:9090",
		PublicURL:    "https://mirror.example.com",
		publicURLSet: true,
		Auth:         Auth{TokenFile: filepath.Join(dir, "secrets/token")},
		Signing:      Signing{KeyFile: filepath.Join(dir, "keys/signing.asc")},
		Bundle:       Bundle{Keyring: filepath.Join(dir, "keys/site-a.asc")},
		Apt: []AptSource{{
			Name:             "debian",
			URL:              "https://apt.upstream.example/debian",
			Suites:           []string{"bookworm", "bookworm-updates"},
			Components:       []string{"main", "contrib", "non-free-firmware"},
			Architectures:    []string{"amd64", "arm64"},
			Keyring:          filepath.Join(dir, "keys/debian-archive-keyring.gpg"),
			Sources:          true,
			Udebs:            true,
			Translations:     []string{"en", "de"},
			Contents:         true,
			Filter:           []string{"nginx", "curl (>= 7.88)"},
			FilterWithDeps:   true,
			FilterRecommends: true,
		}},
		Yum: []YumSource{{
			Name:           "rocky-baseos",
			URL:            "https://yum.upstream.example/9/BaseOS/x86_64/os",
			GPGKey:         "https://yum.upstream.example/RPM-GPG-KEY-upstream",
			Filter:         []string{"kernel", "openssh-server"},
			FilterWithDeps: true,
			Verbatim:       ptr(false),
		}},
		Git: GitConfig{
			ReposFile: filepath.Join(dir, "repos.yaml"),
			Repos: []GitRepo{{
				Name:       "mirrord",
				URL:        "git@github.com:mirrord/mirrord.git",
				Dest:       "src/mirrord",
				Ref:        "v1.2.0",
				TokenFile:  filepath.Join(dir, "secrets/gh-token"),
				SSHKeyFile: "/etc/mirrord/id_ed25519",
				File:       "testdata/mirrord.yaml",
			}},
		},
		File: []FileSource{{
			Name: "tools",
			Files: []FileEntry{{
				URL:    "https://example.com/dl/tool-1.0.tar.gz",
				SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
				Path:   "tools/tool.tar.gz",
			}},
		}},
		Consul: &Consul{
			Address:       "consul.service:8500",
			Token:         "c0ffee",
			Service:       "mirror",
			Datacenter:    "dc1",
			Prefix:        "kv/mirrord/",
			CheckInterval: Duration{5 * time.Second},
		},
		Sync: SyncConfig{
			Interval:    Duration{6 * time.Hour},
			Concurrency: 16,
			PerHost:     2,
			Retries:     0,
			Timeout:     Duration{90 * time.Second},
			ReadTimeout: Duration{20 * time.Second},
		},
		Store: Store{Kind: StoreFS},
		TLS:   &TLS{CertFile: "/etc/mirrord/tls.crt", KeyFile: filepath.Join(dir, "keys/tls.key")},
		Serve: ServeConfig{MaxConnections: 2000, HeaderTimeout: Duration{5 * time.Second}},
	}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("Load:\n got %+v\nwant %+v", cfg, want)
	}
}

// TestRoundTrip marshals a loaded config and parses it back unchanged.
func TestRoundTrip(t *testing.T) {
	cfg, err := Load("testdata/mirrord.yaml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(cfg.Path, out)
	if err != nil {
		t.Fatalf("re-parse: %v\n%s", err, out)
	}
	if !reflect.DeepEqual(again, cfg) {
		t.Errorf("round trip:\n got %+v\nwant %+v\nyaml:\n%s", again, cfg, out)
	}
}

func TestDefaults(t *testing.T) {
	for _, data := range []string{"", "# nothing\n", "---\n", "{}\n", "sync: {}\nconsul:\n"} {
		cfg, err := Parse("/etc/mirrord/mirrord.yaml", []byte(data))
		if err != nil {
			t.Fatalf("%q: %v", data, err)
		}
		want := &Config{
			Path:      "/etc/mirrord/mirrord.yaml",
			DataDir:   "/etc/mirrord/data",
			Listen:    "127.0.0.1:8080",
			PublicURL: "http://127.0.0.1:8080",
			Signing:   Signing{KeyFile: "/etc/mirrord/data/signing/mirrord.asc"},
			Store:     Store{Kind: StoreFS},
			Sync:      SyncConfig{Concurrency: 8, PerHost: 4, Retries: 3, ReadTimeout: Duration{DefaultReadTimeout}},
			Serve:     ServeConfig{MaxConnections: DefaultMaxConnections, HeaderTimeout: Duration{DefaultHeaderTimeout}},
		}
		if !reflect.DeepEqual(cfg, want) {
			t.Errorf("%q:\n got %+v\nwant %+v", data, cfg, want)
		}
	}
}

func TestSourceDefaults(t *testing.T) {
	cfg, err := Parse("m.yaml", []byte(`
apt:
  - {name: d, url: "http://x/debian", suites: [bookworm], insecure_skip_verify: true}
yum:
  - {name: a, url: "http://x/a", gpgkey: k}
  - {name: b, url: "http://x/b", gpgkey: k, filter: [bash]}
file:
  - name: f
    files:
      - {url: "https://x/dir/tool%20v1.tgz?x=1", sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
consul: {address: "localhost:8500"}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Apt[0]
	if !reflect.DeepEqual(a.Components, []string{"main"}) || !reflect.DeepEqual(a.Architectures, []string{"amd64"}) {
		t.Errorf("apt defaults: components %v architectures %v", a.Components, a.Architectures)
	}
	if !cfg.Yum[0].IsVerbatim() || cfg.Yum[1].IsVerbatim() {
		t.Errorf("yum IsVerbatim: %v %v, want true false", cfg.Yum[0].IsVerbatim(), cfg.Yum[1].IsVerbatim())
	}
	if p := cfg.File[0].Files[0].Path; p != "tool v1.tgz" {
		t.Errorf("file path default = %q", p)
	}
	if c := cfg.Consul; c.Service != "mirrord" || c.Prefix != "mirrord/" {
		t.Errorf("consul defaults = %+v", c)
	}
}

func TestPublicURLDefault(t *testing.T) {
	tests := []struct{ listen, want string }{
		{":8080", "http://127.0.0.1:8080"},
		{"0.0.0.0:80", "http://127.0.0.1:80"},
		{"[::]:8080", "http://127.0.0.1:8080"},
		{"10.1.2.3:8080", "http://10.1.2.3:8080"},
		{"[fd00::1]:8080", "http://[fd00::1]:8080"},
		{"mirror.lan:8080", "http://mirror.lan:8080"},
	}
	for _, tt := range tests {
		cfg, err := Parse("m.yaml", []byte("listen: \""+tt.listen+"\"\n"))
		if err != nil {
			t.Fatalf("%s: %v", tt.listen, err)
		}
		if cfg.PublicURL != tt.want {
			t.Errorf("listen %s: public_url = %q, want %q", tt.listen, cfg.PublicURL, tt.want)
		}
	}
}

func TestDurations(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"6h", 6 * time.Hour, ""},
		{"90s", 90 * time.Second, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"90", 90 * time.Second, ""},
		{"0", 0, ""},
		{`"0"`, 0, ""},
		{"0x10", 16 * time.Second, ""},
		{"6x", 0, `m.yaml:1: sync.interval: invalid duration "6x"`},
		{"1.5", 0, "m.yaml:1: sync.interval: expected a duration"},
		{"[1]", 0, "got a sequence"},
		{"true", 0, "got a boolean"},
		{"-5s", 0, "m.yaml:1: sync.interval: must not be negative"},
		{"99999999999999999", 0, "out of range"},
	}
	for _, tt := range tests {
		cfg, err := Parse("m.yaml", []byte("sync: {interval: "+tt.in+"}\n"))
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%s: err = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.in, err)
		} else if cfg.Sync.Interval.Duration != tt.want {
			t.Errorf("%s: got %v, want %v", tt.in, cfg.Sync.Interval, tt.want)
		}
	}
}

func TestDurationUnmarshal(t *testing.T) {
	var v struct{ D Duration }
	if err := yaml.Unmarshal([]byte("d: 2m\n"), &v); err != nil || v.D.Duration != 2*time.Minute {
		t.Errorf("yaml.Unmarshal: %v %v", v.D, err)
	}
	if err := yaml.Unmarshal([]byte("d: nope\n"), &v); err == nil {
		t.Error("yaml.Unmarshal accepted an invalid duration")
	}
}

func TestRelativePaths(t *testing.T) {
	data := `
data_dir: state
auth: {token_file: ../secret/token}
apt:
  - {name: d, url: "http://x/", suites: [s], keyring: keys/d.gpg}
yum:
  - {name: y, url: "http://x/", gpgkey: "file:///etc/pki/key"}
  - {name: z, url: "http://x/", gpgkey: /abs/key}
git:
  repos_file: repos.yaml
  repos:
    - {name: g, url: /srv/g.git, token_file: t, ssh_key_file: k}
`
	cfg, err := Parse("/etc/mirrord/mirrord.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	got := []string{
		cfg.DataDir, cfg.Signing.KeyFile, cfg.Auth.TokenFile, cfg.Apt[0].Keyring,
		cfg.Yum[0].GPGKey, cfg.Yum[1].GPGKey, cfg.Git.ReposFile,
		cfg.Git.Repos[0].TokenFile, cfg.Git.Repos[0].SSHKeyFile,
	}
	want := []string{
		"/etc/mirrord/state", "/etc/mirrord/state/signing/mirrord.asc", "/etc/secret/token", "/etc/mirrord/keys/d.gpg",
		"file:///etc/pki/key", "/abs/key", "/etc/mirrord/repos.yaml",
		"/etc/mirrord/t", "/etc/mirrord/k",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paths:\n got %q\nwant %q", got, want)
	}
}

func TestLoadResolvesAgainstAbsoluteDir(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mirrord.yaml")
	if err := os.WriteFile(path, []byte("signing: {key_file: k.asc}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DataDir != filepath.Join(dir, "data") || cfg.Signing.KeyFile != filepath.Join(dir, "k.asc") {
		t.Errorf("data_dir %q key_file %q", cfg.DataDir, cfg.Signing.KeyFile)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}

const goodSHA = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

func TestErrors(t *testing.T) {
	tests := []struct {
		name, data string
		want       []string // substrings of the error
	}{
		{"syntax", "listen: [\n", []string{"m.yaml:"}},
		{"two documents", "listen: a:1\n---\nlisten: b:1\n", []string{"m.yaml:2: only one YAML document"}},
		{"top level not mapping", "- a\n", []string{"m.yaml:1: top level: expected a mapping, got a sequence"}},
		{"unknown top key", "\nlisen: x:1\n", []string{`m.yaml:2: unknown key "lisen" (did you mean "listen"?)`}},
		{"unknown key with suggestion", "apt:\n  - name: d\n    url: http://x/\n    suite: [s]\n", []string{`m.yaml:4: unknown key "suite" in apt[0] (did you mean "suites"?)`}},
		{"unknown key no suggestion", "sync:\n  frobnicate: 1\n", []string{`m.yaml:2: unknown key "frobnicate" in sync`}},
		{"unknown key prefix suggestion", "apt:\n  - {name: d, insecure: true}\n", []string{`unknown key "insecure" in apt[0] (did you mean "insecure_skip_verify"?)`}},
		{"duplicate key", "listen: a:1\nlisten: b:1\n", []string{`m.yaml:2: duplicate key "listen" in top level (first at line 1)`}},
		{"wrong type sequence", "\n\nlisten: [a]\n", []string{"m.yaml:3: listen: expected a string, got a sequence"}},
		{"wrong type mapping", "auth: tok\n", []string{`m.yaml:1: auth: expected a mapping, got a string ("tok")`}},
		{"wrong type bool", "apt:\n  - {name: d, sources: yes}\n", []string{`m.yaml:2: apt[0].sources: expected a boolean (true or false), got a string ("yes")`}},
		{"wrong type int", "sync:\n  concurrency: many\n", []string{"m.yaml:2: sync.concurrency: expected an integer"}},
		{"bool for string", "listen: true\n", []string{`listen: expected a string, got a boolean ("true") (quote it`}},
		{"scalar for list", "apt:\n  - name: d\n    suites: bookworm\n", []string{"m.yaml:3: apt[0].suites: expected a sequence, got a string", "[bookworm]"}},
		{"bad listen", "listen: nope\n", []string{`m.yaml:1: listen: invalid address "nope"`}},
		{"bad public_url", "public_url: ftp://x\n", []string{"m.yaml:1: public_url: invalid URL", "http"}},
		{"token and token_file", "auth:\n  token_file: f\n  token: t\n", []string{"m.yaml:3: auth.token: set only one"}},
		{"apt name missing", "apt:\n  - {url: \"http://x/\", suites: [s], keyring: k}\n", []string{"m.yaml:2: apt[0].name: required"}},
		{"apt name invalid", "apt:\n  - {name: Debian, url: \"http://x/\", suites: [s], keyring: k}\n", []string{`m.yaml:2: apt[0].name: invalid name "Debian"`}},
		{"apt name duplicate", "apt:\n  - {name: d, url: \"http://x/\", suites: [s], keyring: k}\n  - {name: d, url: \"http://x/\", suites: [s], keyring: k}\n", []string{`m.yaml:3: apt[1].name: duplicate name "d" (also used by apt[0] at line 2)`}},
		{"names per kind", "apt:\n  - {name: d, url: \"http://x/\", suites: [s], keyring: k}\nyum:\n  - {name: d, url: \"http://x/\", gpgkey: k}\n", nil},
		{"apt url scheme", "apt:\n  - name: d\n    url: ftp://x/\n    suites: [s]\n    keyring: k\n", []string{"m.yaml:3: apt[0].url: invalid URL", "http"}},
		{"apt url missing", "apt:\n  - name: d\n    suites: [s]\n    keyring: k\n", []string{"m.yaml:2: apt[0].url: required"}},
		{"apt no suites", "apt:\n  - name: d\n    url: http://x/\n    keyring: k\n", []string{"m.yaml:2: apt[0].suites: at least one suite"}},
		{"apt empty suite", "apt:\n  - name: d\n    url: http://x/\n    keyring: k\n    suites:\n      - \"\"\n", []string{"m.yaml:6: apt[0].suites[0]: must not be empty"}},
		{"apt keyring", "apt:\n  - name: d\n    url: http://x/\n    suites: [s]\n", []string{"m.yaml:2: apt[0].keyring: required", `"keyring: `, `"insecure_skip_verify: true"`}},
		{"apt verbatim filter", "apt:\n  - name: d\n    url: http://x/\n    suites: [s]\n    keyring: k\n    filter: [a]\n    verbatim: true\n", []string{"m.yaml:7: apt[0].verbatim: verbatim: true cannot be combined with filter"}},
		{"yum gpgkey", "yum:\n  - name: y\n    url: http://x/\n", []string{"m.yaml:2: yum[0].gpgkey: required", `"gpgkey: `, "insecure_skip_verify"}},
		{"yum insecure", "yum:\n  - {name: y, url: \"http://x/\", insecure_skip_verify: true}\n", nil},
		{"yum verbatim filter", "yum:\n  - name: y\n    url: http://x/\n    gpgkey: k\n    filter: [a]\n    verbatim: true\n", []string{"m.yaml:6: yum[0].verbatim: verbatim: true cannot be combined with filter"}},
		{"yum verbatim false filter", "yum:\n  - {name: y, url: \"http://x/\", gpgkey: k, filter: [a], verbatim: false}\n", nil},
		{"git bad url", "git:\n  repos:\n    - name: g\n      url: ftp://h/x\n", []string{`m.yaml:4: git.repos[0].url: invalid git URL "ftp://h/x": unsupported scheme`}},
		{"git missing url", "git:\n  repos:\n    - name: g\n", []string{"m.yaml:3: git.repos[0].url: required"}},
		{"git scp missing path", "git:\n  repos:\n    - {name: g, url: \"git@host:\"}\n", []string{"git.repos[0].url: invalid git URL"}},
		{"git bad dest", "git:\n  repos:\n    - {name: g, url: /srv/g, dest: ../x}\n", []string{"m.yaml:3: git.repos[0].dest: invalid path \"../x\""}},
		{"git dup", "git:\n  repos:\n    - {name: g, url: /srv/g}\n    - {name: g, url: /srv/h}\n", []string{`m.yaml:4: git.repos[1].name: duplicate name "g"`}},
		{"file no files", "file:\n  - name: f\n", []string{"m.yaml:2: file[0].files: at least one file"}},
		{"file no url", "file:\n  - name: f\n    files:\n      - sha256: " + goodSHA + "\n        path: a\n", []string{"m.yaml:4: file[0].files[0].url: required"}},
		{"file no sha", "file:\n  - name: f\n    files:\n      - url: http://x/a\n", []string{"m.yaml:4: file[0].files[0].sha256: required"}},
		{"file bad sha", "file:\n  - name: f\n    files:\n      - url: http://x/a\n        sha256: abc\n", []string{`m.yaml:5: file[0].files[0].sha256: invalid checksum "abc"`}},
		{"file abs path", "file:\n  - name: f\n    files:\n      - url: http://x/a\n        sha256: " + goodSHA + "\n        path: /etc/passwd\n", []string{"m.yaml:6: file[0].files[0].path:", "leading /"}},
		{"file dotdot path", "file:\n  - name: f\n    files:\n      - {url: \"http://x/a\", sha256: " + goodSHA + ", path: a/../../b}\n", []string{"m.yaml:4: file[0].files[0].path:", ".. segments"}},
		{"file unclean path", "file:\n  - name: f\n    files:\n      - {url: \"http://x/a\", sha256: " + goodSHA + ", path: a//b/}\n", []string{"m.yaml:4: file[0].files[0].path:", "not clean", `"a/b"`}},
		{"file nul path", "file:\n  - name: f\n    files:\n      - {url: \"http://x/a\", sha256: " + goodSHA + ", path: \"a\\0b\"}\n", []string{"m.yaml:4: file[0].files[0].path:", "NUL"}},
		{"file no derivable path", "file:\n  - name: f\n    files:\n      - {url: \"http://x/dir/\", sha256: " + goodSHA + "}\n", []string{"m.yaml:4: file[0].files[0].path: cannot derive"}},
		{"file dup path", "file:\n  - name: f\n    files:\n      - {url: \"http://x/a\", sha256: " + goodSHA + "}\n      - {url: \"http://y/a\", sha256: " + goodSHA + "}\n", []string{`m.yaml:5: file[0].files[1].path: duplicate path "a" (also used by file[0].files[0] at line 4)`}},
		{"sync concurrency zero", "sync:\n  concurrency: 0\n", []string{"m.yaml:2: sync.concurrency: must be at least 1"}},
		{"sync per_host negative", "sync:\n  per_host: -1\n", []string{"m.yaml:2: sync.per_host: must be at least 1"}},
		{"sync retries negative", "sync:\n  retries: -1\n", []string{"m.yaml:2: sync.retries: must be at least 0"}},
		{"sync timeout negative", "sync:\n  timeout: -1\n", []string{"m.yaml:2: sync.timeout: must not be negative"}},
		{"bad merge", "sync:\n  <<: 3\n", []string{"m.yaml:2: sync: << expects a mapping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("m.yaml", []byte(tt.data))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "m.yaml" {
				t.Errorf("error %v is not a *Error for m.yaml", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestMultipleErrorsOnePerLine(t *testing.T) {
	_, err := Parse("m.yaml", []byte("sync:\n  retries: x\nlisen: a\nlisten: [b]\n"))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"m.yaml:2: sync.retries:", "m.yaml:3: unknown key \"lisen\"", "m.yaml:4: listen:"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%v", len(lines), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], w)
		}
	}
}

func TestAliasesAndMerge(t *testing.T) {
	data := `
apt:
  - &d
    name: zero
    url: http://x/debian
    keyring: k
    suites: [a]
  - <<: *d
    name: one
  - <<: [*d]
    name: two
    suites: [b]
`
	cfg, err := Parse("m.yaml", []byte(data))
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Apt) != 3 || cfg.Apt[1].URL != "http://x/debian" || cfg.Apt[1].Suites[0] != "a" || cfg.Apt[2].Suites[0] != "b" {
		t.Errorf("merge: %+v", cfg.Apt)
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("  s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		auth    Auth
		want    string
		wantErr bool
	}{
		{Auth{}, "", false},
		{Auth{Token: "inline"}, "inline", false},
		{Auth{TokenFile: file}, "s3cret", false},
		{Auth{TokenFile: empty}, "", true},
		{Auth{TokenFile: filepath.Join(dir, "missing")}, "", true},
	}
	for _, tt := range tests {
		got, err := (&Config{Auth: tt.auth}).Token()
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%+v: Token() = %q, %v", tt.auth, got, err)
		}
	}
}

func TestSourceNames(t *testing.T) {
	cfg, err := Load("testdata/mirrord.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"apt/debian", "yum/rocky-baseos", "git/mirrord", "file/tools"}
	if got := cfg.SourceNames(); !reflect.DeepEqual(got, want) {
		t.Errorf("SourceNames = %q, want %q", got, want)
	}
}

func TestGitRepos(t *testing.T) {
	cfg, err := Load("testdata/mirrord.yaml")
	if err != nil {
		t.Fatal(err)
	}
	repos, err := cfg.GitRepos()
	if err != nil {
		t.Fatal(err)
	}
	if len(repos) < 2 || repos[0].Name != "mirrord" || repos[1].Name != "apt" {
		t.Errorf("GitRepos = %+v", repos)
	}
	cfg.Git.Repos[0].Name = "nova"
	if _, err := cfg.GitRepos(); err == nil || !strings.Contains(err.Error(), `"nova"`) {
		t.Errorf("duplicate across inline and file: err = %v", err)
	}
}

func TestCheckGitURL(t *testing.T) {
	good := []string{
		"https://github.com/a/b.git", "http://h/x", "ssh://git@h:22/x.git", "git://h/x",
		"file:///srv/x.git", "git@github.com:a/b.git", "h:x", "/srv/git/x.git", "./rel/x", "x.git",
	}
	bad := []string{"", "ftp://h/x", "https:///x", "ssh://", "git@:x", "git@h:", "file://"}
	for _, s := range good {
		if err := checkGitURL(s); err != nil {
			t.Errorf("checkGitURL(%q) = %v", s, err)
		}
	}
	for _, s := range bad {
		if err := checkGitURL(s); err == nil {
			t.Errorf("checkGitURL(%q) = nil, want error", s)
		}
	}
}

// TestSetListen: serve --listen moves public_url along unless the file set
// one.
func TestSetListen(t *testing.T) {
	for _, tc := range []struct{ file, listen, want string }{
		{"", "127.0.0.1:9999", "http://127.0.0.1:9999"},
		{"listen: 0.0.0.0:8080\n", "0.0.0.0:9090", "http://127.0.0.1:9090"},
		{"public_url: http://mirror.example:8080\n", "127.0.0.1:9999", "http://mirror.example:8080"},
	} {
		cfg, err := Parse("mirrord.yaml", []byte(tc.file))
		if err != nil {
			t.Fatal(err)
		}
		if err := cfg.SetListen(tc.listen); err != nil {
			t.Fatal(err)
		}
		if cfg.Listen != tc.listen || cfg.PublicURL != tc.want {
			t.Errorf("%q + --listen %s: listen %s, public_url %s; want public_url %s", tc.file, tc.listen, cfg.Listen, cfg.PublicURL, tc.want)
		}
	}
	cfg, _ := Parse("mirrord.yaml", nil)
	if err := cfg.SetListen("nope"); err == nil || !strings.Contains(err.Error(), "host:port") {
		t.Errorf("bad --listen: %v", err)
	}
}

func TestMakeName(t *testing.T) {
	used := map[string]bool{}
	for _, tc := range []struct{ in, want string }{
		{"BaseOS", "baseos"}, {"baseos", "baseos-2"}, {"My Repo!", "my-repo"}, {"---", "repo"}, {"", "repo-2"},
	} {
		if got := MakeName(used, tc.in); got != tc.want || !ValidName(got) {
			t.Errorf("MakeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsSCPLike(t *testing.T) {
	for s, want := range map[string]bool{
		"git@host.example:org/repo.git": true, "host:repo": true, ":repo": false,
		"/srv/git/a:b": false, "dir/a:b": false, "https://h/x": false, "repo": false,
	} {
		if got := IsSCPLike(s); got != want {
			t.Errorf("IsSCPLike(%q) = %v, want %v", s, got, want)
		}
	}
}
