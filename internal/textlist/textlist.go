// Package textlist renders lists of names in error messages and warnings,
// the same way everywhere.
package textlist

import (
	"fmt"
	"strconv"
	"strings"
)

// Quote renders list as Go-quoted strings, comma separated: "a", "b".
func Quote(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// FirstN renders the first n entries of list and, past them, how many
// more there are: "a, b, c (and 12 more)".
func FirstN(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return fmt.Sprintf("%s (and %d more)", strings.Join(list[:n], ", "), len(list)-n)
}
