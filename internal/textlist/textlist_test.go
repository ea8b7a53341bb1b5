package textlist

import (
	"fmt"
	"testing"
)

func TestFirstN(t *testing.T) {
	var list []string
	for i := range 23 {
		list = append(list, fmt.Sprint(i))
	}
	if got, want := FirstN(list, 20), "0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19 (and 3 more)"; got != want {
		t.Errorf("firstN = %q, want %q", got, want)
	}
	if got := FirstN(list[:2], 20); got != "0, 1" {
		t.Errorf("firstN = %q", got)
	}
}

func TestQuote(t *testing.T) {
	if got := Quote([]string{"a", `b"c`}); got != `"a", "b\"c"` {
		t.Errorf("Quote = %s", got)
	}
}
