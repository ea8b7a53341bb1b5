package main

import (
	"path/filepath"

	"github.com/mirrord/mirrord/internal/apt"
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/gitcache"
	"github.com/mirrord/mirrord/internal/server"
	"github.com/mirrord/mirrord/internal/source"
)

// gitFetches bounds how many git repositories fetch at once in one sync.
const gitFetches = 4

// gitSources builds the configured git sources: the inline git.repos and
// those of git.repos_file. Relative local paths are resolved against the
// directory of the file that names them.
func gitSources(cfg *config.Config) ([]source.Source, error) {
	repos, err := cfg.GitRepos()
	if err != nil {
		return nil, usageError{err}
	}
	inline := map[string]bool{}
	for _, r := range cfg.Git.Repos {
		inline[r.Name] = true
	}
	cfgDir := dirOf(cfg.Path)
	opt := gitcache.Options{Limiter: gitcache.NewLimiter(gitFetches)}
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
	return gitcache.Repo{Name: r.Name, URL: r.URL, BaseDir: base, TokenFile: r.TokenFile, SSHKeyFile: r.SSHKeyFile}
}

func dirOf(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Dir(path)
	}
	return filepath.Dir(abs)
}

// kindServers returns the handlers for kinds that are not plain file trees:
// git smart HTTP, from the bare repositories the syncer keeps in
// data_dir/state/git.
func (a *app) kindServers() map[string]server.KindServer {
	return map[string]server.KindServer{
		apt.Kind: apt.Served{},
		gitcache.Kind: gitcache.NewHandler(gitcache.HandlerOptions{
			StateDir: filepath.Join(a.cfg.DataDir, "state", gitcache.Kind), Log: a.log,
		}),
	}
}
