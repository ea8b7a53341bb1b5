package config

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrNoConfig is wrapped by Find when no config file exists where mirrord
// looks for one.
var ErrNoConfig = errors.New("no config file found")

// DefaultPaths are where Find looks, in order, when neither --config nor
// $MIRRORD_CONFIG names a file.
var DefaultPaths = []string{"mirrord.yaml", "/etc/mirrord/mirrord.yaml"}

// Find returns the config file to use: flag (--config) when given, else
// env ($MIRRORD_CONFIG) when set, else the first of DefaultPaths that
// exists. A named file that does not exist is an error naming it; nothing
// found is ErrNoConfig naming every place looked at.
func Find(flag, env string) (string, error) {
	for _, named := range []struct{ how, path string }{{"--config", flag}, {"$MIRRORD_CONFIG", env}} {
		if named.path == "" {
			continue
		}
		if _, err := os.Stat(named.path); err != nil {
			return "", fmt.Errorf("%w: %s names %s: %w", ErrNoConfig, named.how, named.path, err)
		}
		return named.path, nil
	}
	for _, p := range DefaultPaths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: looked at --config (not given), $MIRRORD_CONFIG (not set), ./%s and %s; write one (`mirrord init` makes one from this host's package sources) or pass --config FILE",
		ErrNoConfig, DefaultPaths[0], strings.Join(DefaultPaths[1:], ", "))
}
