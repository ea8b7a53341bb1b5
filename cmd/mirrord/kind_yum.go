package main

import (
	"fmt"

	"github.com/mirrord/mirrord/internal/source"
)

// yumSources builds the configured yum sources.
func (a *app) yumSources() ([]source.Source, error) {
	if len(a.cfg.Yum) > 0 {
		return nil, usageError{fmt.Errorf("%s: yum sources are not supported by this build yet", a.cfg.Path)}
	}
	return nil, nil
}
