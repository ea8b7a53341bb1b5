package bytesize

import "testing"

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB", 18 << 50: "18.0 PiB"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "100000": 100000, "4G": 4 << 30, "20GiB": 20 << 30, "512m": 512 << 20, "1.5T": 3 << 39, "1k": 1024, "8 MiB": 8 << 20, "2KB": 2000, "10GB": 10e9, "3B": 3} {
		if got, err := Parse(in); err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "G", "-1G", "4X", "1.5", "0.3K", "9999999P", "NaN", "4GG", "4 G B", "1e3"} {
		if n, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) = %d, want an error", bad, n)
		}
	}
}
