package config

import (
	"fmt"
	"strconv"

	"gopkg.in/yaml.v3"

	"github.com/mirrord/mirrord/internal/bytesize"
)

// ByteSize is a size in bytes written in YAML as an integer or a number
// with a unit, read by bytesize.Parse: K, M, G, T alone or with iB are
// powers of 1024, with B powers of 1000 ("20GiB", "512M", "10GB").
type ByteSize int64

const byteSizeHint = `a size such as "20GiB", "512M" or "10GB", or an integer number of bytes`

func parseByteSize(n *yaml.Node) (int64, error) {
	if n.Kind != yaml.ScalarNode || (n.ShortTag() != "!!int" && n.ShortTag() != "!!str") {
		return 0, fmt.Errorf("expected %s, got %s", byteSizeHint, describe(n))
	}
	v, err := bytesize.Parse(n.Value)
	if err != nil {
		return 0, fmt.Errorf("invalid %v: expected %s", err, byteSizeHint)
	}
	return v, nil
}

// String formats the size with the largest binary unit that divides it.
func (b ByteSize) String() string {
	for _, u := range []struct {
		name string
		n    int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if b != 0 && int64(b)%u.n == 0 {
			return strconv.FormatInt(int64(b)/u.n, 10) + u.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
