package main

import (
	"net/http"
	"sync"
	"time"

	"fmt"
	"os"
	"path/filepath"

	gitclient "github.com/go-git/go-git/v5/plumbing/transport/client"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"

	"github.com/mirrord/mirrord/internal/apt"
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/fetch"
	"github.com/mirrord/mirrord/internal/gitcache"
	"github.com/mirrord/mirrord/internal/server"
	"github.com/mirrord/mirrord/internal/source"
)

// gitFetches bounds how many git repositories fetch at once in one sync.
const gitFetches = 4

// gitSources builds the configured git sources: the inline git.repos and
// those of git.repos_file. Relative local paths are resolved against the
// directory of the file that names them. cacheDir holds the local bare
// repositories (a cache of the packs in the store).
func gitSources(cfg *config.Config, cacheDir string) ([]source.Source, error) {
	installGitTransport(cfg.Sync.ReadTimeout.Duration)
	repos, err := cfg.GitRepos()
	if err != nil {
		return nil, usageError{err}
	}
	inline := map[string]bool{}
	for _, r := range cfg.Git.Repos {
		inline[r.Name] = true
	}
	cfgDir := dirOf(cfg.Path)
	reposFile, err := reposFile(cfg)
	if err != nil {
		return nil, err
	}
	opt := gitcache.Options{Limiter: gitcache.NewLimiter(gitFetches), ReposYAML: reposFile, CacheDir: cacheDir, Retries: cfg.Sync.Retries}
	var out []source.Source
	for _, r := range repos {
		base := dirOf(cfg.Git.ReposFile)
		if inline[r.Name] {
			base = cfgDir
		}
		s, err := gitcache.New(gitRepo(r, base), opt)
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, s)
	}
	return out, nil
}

func gitRepo(r config.GitRepo, base string) gitcache.Repo {
	return gitcache.Repo{Name: r.Name, URL: r.URL, BaseDir: base, TokenFile: r.TokenFile, SSHKeyFile: r.SSHKeyFile,
		Ref: r.Ref, Dest: r.Dest, Origin: r.Origin()}
}

// reposFile is the repos.yaml the git sources come from: git.repos_file,
// or the inline git.repos rendered as one; nil without git sources.
func reposFile(cfg *config.Config) ([]byte, error) {
	if f := cfg.Git.ReposFile; f != "" {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, usageError{fmt.Errorf("reading repos file: %w", err)}
		}
		return data, nil
	}
	if len(cfg.Git.Repos) == 0 {
		return nil, nil
	}
	return gitcache.InlineReposFile(filepath.Base(cfg.Path), cfg.Git.Repos)
}

func dirOf(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Dir(path)
	}
	return filepath.Dir(abs)
}

// gitCacheDir holds the local bare repositories, a cache of the packs in
// the store.
func (a *app) gitCacheDir() string { return filepath.Join(a.cfg.DataDir, "state", gitcache.Kind) }

// kindServers returns the handlers for kinds that are not plain file trees:
// git smart HTTP, from bare repositories under data_dir/state/git built
// from the store's packs.
func (a *app) kindServers() map[string]server.KindServer {
	return map[string]server.KindServer{
		apt.Kind: apt.Served{},
		gitcache.Kind: gitcache.NewHandler(gitcache.HandlerOptions{
			CacheDir: a.gitCacheDir(), Log: a.log,
			Catalog: a.catalog, PublicURL: a.cfg.PublicURL,
		}),
	}
}

// gitTransportOnce installs go-git's HTTP(S) transport once per process:
// go-git keeps it in a registry of its own (client.InstallProtocol), so it
// cannot be handed to a fetch. The transport bounds a stalled git
// upstream by sync.read_timeout, as the fetcher does for the other kinds;
// a reload's new read_timeout applies to git after a restart.
var gitTransportOnce sync.Once

func installGitTransport(readTimeout time.Duration) {
	gitTransportOnce.Do(func() {
		base := &http.Transport{Proxy: http.ProxyFromEnvironment, ResponseHeaderTimeout: readTimeout, IdleConnTimeout: 90 * time.Second}
		c := githttp.NewClient(&http.Client{Transport: fetch.StallTransport(base, readTimeout)})
		gitclient.InstallProtocol("http", c)
		gitclient.InstallProtocol("https", c)
	})
}
