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
			FilterCheck:        y.FilterCheck,
			FilterFrom:         y.FilterFrom,
			Advisories:         advisories(y.Advisories),
			Retain:             retainVersions(y.Retain),
			Verbatim:           y.IsVerbatim(),
		})
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, s)
	}
	return out, nil
}

func advisories(a *config.Advisories) *yum.Advisories {
	if a == nil {
		return nil
	}
	return &yum.Advisories{Types: a.Types, Severities: a.Severities}
}

func retainVersions(r *config.Retain) int {
	if r == nil {
		return 0
	}
	return r.Versions
}
