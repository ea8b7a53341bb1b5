package main

import (
	"github.com/mirrord/mirrord/internal/apt"
	"github.com/mirrord/mirrord/internal/source"
)

// aptSources builds the configured apt sources.
func (a *app) aptSources() ([]source.Source, error) {
	out := make([]source.Source, 0, len(a.cfg.Apt))
	for _, c := range a.cfg.Apt {
		s, err := apt.New(c, apt.Options{})
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, s)
	}
	return out, nil
}
