package config

import (
	"fmt"
	"math"
	"time"

	"gopkg.in/yaml.v3"
)

// Duration is a time.Duration written in YAML as a Go duration string
// ("90s", "6h", "1h30m") or as an integer number of seconds.
type Duration struct{ time.Duration }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := parseDuration(n)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// MarshalYAML implements yaml.Marshaler, writing a duration string.
func (d Duration) MarshalYAML() (any, error) {
	return d.String(), nil
}

const durationHint = `a duration such as "90s" or "6h", or an integer number of seconds`

func parseDuration(n *yaml.Node) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode {
		return 0, fmt.Errorf("expected %s, got %s", durationHint, describe(n))
	}
	switch n.ShortTag() {
	case "!!int":
		return secondsDuration(n)
	case "!!str":
		d, err := time.ParseDuration(n.Value)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q: expected %s", n.Value, durationHint)
		}
		return d, nil
	}
	return 0, fmt.Errorf("expected %s, got %s", durationHint, describe(n))
}

func secondsDuration(n *yaml.Node) (time.Duration, error) {
	var secs int64
	err := n.Decode(&secs)
	if err != nil || secs > math.MaxInt64/int64(time.Second) || secs < math.MinInt64/int64(time.Second) {
		return 0, fmt.Errorf("invalid duration %q: out of range", n.Value)
	}
	return time.Duration(secs) * time.Second, nil
}
