// Package bytesize formats and parses byte counts the way mirrord shows
// and accepts them: binary units ("1.5 MiB"; "4G", "20GiB", "512M").
package bytesize

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// Format renders n with binary units: "512 B", "1.5 KiB", "5.0 GiB".
func Format(n int64) string { return FormatFloat(float64(n)) }

// FormatFloat is Format for a float (a rate, an average).
func FormatFloat(n float64) string {
	const units = "KMGTPE"
	if n < 1024 {
		return fmt.Sprintf("%.0f B", n)
	}
	i := -1
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", n, units[i])
}

// Parse reads a size as coreutils (split -b, dd) does: a number with an
// optional unit K, M, G, T or P — alone or with "iB" a power of 1024
// ("4G" = "4GiB" = 4·2³⁰), with "B" a power of 1000 ("10GB" = 10·10⁹) —
// any case, e.g. "4G", "20GiB", "512m", "1.5T", "100000". It refuses
// negative numbers, fractions of a byte and values past int64.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := t, ""
	if i >= 0 {
		num, unit = t[:i], strings.ToUpper(strings.TrimSpace(t[i:]))
	}
	mult, ok := units[unit]
	f, err := strconv.ParseFloat(num, 64)
	if !ok || err != nil || num == "" {
		return 0, fmt.Errorf("size %q: want a number with an optional unit K, M, G, T or P (powers of 1024; KB, MB, … powers of 1000), e.g. 4G or 20GiB", s)
	}
	v := f * mult
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("size %q: too large", s)
	}
	if v != math.Trunc(v) {
		return 0, fmt.Errorf("size %q: not a whole number of bytes", s)
	}
	return int64(v), nil
}

// units maps an upper-cased unit to its multiplier.
var units = func() map[string]float64 {
	m := map[string]float64{"": 1, "B": 1}
	bin, dec := float64(1), float64(1)
	for _, u := range []string{"K", "M", "G", "T", "P"} {
		bin *= 1024
		dec *= 1000
		m[u], m[u+"IB"], m[u+"B"] = bin, bin, dec
	}
	return m
}()
