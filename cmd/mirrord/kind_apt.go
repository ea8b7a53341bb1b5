package main

import (
	"github.com/mirrord/mirrord/internal/apt"
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/source"
)

// aptSources builds the configured apt sources.
func aptSources(cfg *config.Config) ([]source.Source, error) {
	out := make([]source.Source, 0, len(cfg.Apt))
	for _, c := range cfg.Apt {
		s, err := apt.New(c, apt.Options{})
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, s)
	}
	return out, nil
}
