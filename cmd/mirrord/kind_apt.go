package main

import (
	"fmt"

	"github.com/mirrord/mirrord/internal/source"
)

// aptSources builds the configured apt sources.
func (a *app) aptSources() ([]source.Source, error) {
	if len(a.cfg.Apt) > 0 {
		return nil, usageError{fmt.Errorf("%s: apt sources are not supported by this build yet", a.cfg.Path)}
	}
	return nil, nil
}
