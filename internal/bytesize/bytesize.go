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

// Parse reads a size: a number with an optional unit K, M, G, T or P
// (binary: 1K = 1024), optionally followed by "iB" or "B", any case, e.g.
// "4G", "20GiB", "512m", "1.5T", "100000". It refuses negative, fractional
// byte counts and values past int64.
func Parse(s string) (int64, error) {
	t := strings.TrimSpace(s)
	num := strings.TrimRight(t, "kKmMgGtTpPeEiIbB ")
	unit := strings.ToUpper(strings.TrimSpace(t[len(num):]))
	unit = strings.TrimSuffix(strings.TrimSuffix(unit, "B"), "I")
	mult := map[string]float64{"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}[unit]
	if mult == 0 || num == "" {
		return 0, fmt.Errorf("size %q: want a number with an optional unit K, M, G, T or P (binary), e.g. 4G or 20GiB", s)
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("size %q: want a non-negative number, e.g. 4G or 20GiB", s)
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
