package main

import (
	"github.com/mirrord/mirrord/internal/config"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/yum"
)

// yumSources builds the configured yum sources.
func yumSources(cfg *config.Config) ([]source.Source, error) {
	var out []source.Source
	for _, y := range cfg.Yum {
		s, err := yum.New(yum.Options{
			Name:               y.Name,
			URL:                y.URL,
			GPGKey:             y.GPGKey,
			InsecureSkipVerify: y.InsecureSkipVerify,
			Filter:             y.Filter,
			FilterWithDeps:     y.FilterWithDeps,
			Verbatim:           y.IsVerbatim(),
		})
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, s)
	}
	return out, nil
}
