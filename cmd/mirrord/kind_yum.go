package main

import (
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/yum"
)

// yumSources builds the configured yum sources.
func (a *app) yumSources() ([]source.Source, error) {
	var out []source.Source
	for _, y := range a.cfg.Yum {
		s, err := yum.New(yum.Options{
			Name:               y.Name,
			URL:                y.URL,
			GPGKey:             y.GPGKey,
			InsecureSkipVerify: y.InsecureSkipVerify,
			Filter:             y.Filter,
			FilterWithDeps:     y.FilterWithDeps,
			FilterCheck:        y.FilterCheck,
			FilterFrom:         y.FilterFrom,
			Verbatim:           y.IsVerbatim(),
		})
		if err != nil {
			return nil, usageError{err}
		}
		out = append(out, s)
	}
	return out, nil
}
