package main

import (
	"fmt"

	"github.com/mirrord/mirrord/internal/server"
	"github.com/mirrord/mirrord/internal/source"
)

// gitSources builds the configured git sources.
func (a *app) gitSources() ([]source.Source, error) {
	if len(a.cfg.Git.Repos) > 0 || a.cfg.Git.ReposFile != "" {
		return nil, usageError{fmt.Errorf("%s: git sources are not supported by this build yet", a.cfg.Path)}
	}
	return nil, nil
}

// kindServers returns the handlers for kinds that are not plain file trees.
func (a *app) kindServers() map[string]server.KindServer { return nil }
