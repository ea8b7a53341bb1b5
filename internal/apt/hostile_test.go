package apt

import (
	"bytes"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/store"
)

// Hostile upstreams: each sync fails with an error naming the file, and
// the harness (mirror.sync) checks that no snapshot was made.

// A decompression bomb in every compression apt publishes: a few KiB that
// inflate past the cap are cut off there, never written out whole.
func TestBombEveryCompression(t *testing.T) {
	for _, suf := range []string{".xz", ".gz", ".bz2", ".zst"} {
		t.Run(suf[1:], func(t *testing.T) {
			up := demoRepo(t, apttest.Options{Compressions: []string{"", suf}})
			blank := bytes.Repeat(append(bytes.Repeat([]byte(" "), 1023), '\n'), 8<<10) // 8 MiB of blank lines
			rewritePackages(t, up, func(b []byte) []byte { return append(b, blank...) })
			if n := len(up.ReadFile(t, "dists/stable/main/binary-amd64/Packages"+suf)); n > 64<<10 {
				t.Fatalf("the bomb is %d bytes compressed; want a few KiB", n)
			}
			src, err := New(aptConfig(up, nil), Options{MaxIndexSize: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			err = expectFailure(t, newMirror(t), src, "Packages"+suf, "decompresses to more than 1048576 bytes")
			if !errors.Is(err, store.ErrTooLarge) {
				t.Errorf("error does not wrap ErrTooLarge: %v", err)
			}
		})
	}
}

// endless yields n bytes of c without ever holding them.
type endless struct {
	c    byte
	n, i int64
}

func (e *endless) Read(p []byte) (int, error) {
	if e.i >= e.n {
		return 0, io.EOF
	}
	k := min(int64(len(p)), e.n-e.i)
	for j := range k {
		p[j] = e.c
	}
	e.i += k
	return int(k), nil
}

// A 4 GiB line is refused after the paragraph cap, read as a stream: the
// parser neither reads nor allocates more than the cap and its buffer.
func TestMultiGBLineIsStreamed(t *testing.T) {
	src := &endless{c: 'x', n: 4 << 30}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	p := newParagraphs(io.MultiReader(strings.NewReader("Package: a\nDescription: "), src))
	_, err := p.next()
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "line 2: longer than") {
		t.Fatalf("err = %v, want line 2 longer than the cap", err)
	}
	if src.i > maxParagraph+(1<<20) {
		t.Errorf("read %d bytes of the line before refusing it (cap %d)", src.i, maxParagraph)
	}
	// Growing the line buffer to the cap allocates a few times the cap in
	// total; a parser that held the line would need all 4 GiB.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8*maxParagraph {
		t.Errorf("allocated %d bytes for a line refused at %d", alloc, maxParagraph)
	}
}

// The same through a sync: a Packages index whose one line is 64 MiB
// (64 KiB gzipped) fails naming the index and the line.
func TestHugeLineInPackages(t *testing.T) {
	up := demoRepo(t, apttest.Options{Compressions: []string{"", ".gz"}})
	rewritePackages(t, up, func(b []byte) []byte {
		return append(b, append(append([]byte("\nPackage: huge\nDescription: "), bytes.Repeat([]byte("x"), 64<<20)...), '\n')...)
	})
	expectFailure(t, newMirror(t), newSource(t, aptConfig(up, nil)), "Packages.gz", "longer than 16777216 bytes")
}

// Absolute paths in Filename: are refused like "../" ones.
func TestFilenameAbsolute(t *testing.T) {
	up := demoRepo(t, apttest.Options{})
	rewritePackages(t, up, func(b []byte) []byte {
		return bytes.Replace(b, []byte("Filename: pool/"), []byte("Filename: /etc/"), 1)
	})
	expectFailure(t, newMirror(t), newSource(t, aptConfig(up, nil)), `Filename "/etc/`, "malformed or malicious")
}

// A correctly signed Release that lists one index twice with different
// checksums: neither can be trusted, so the sync stops there.
func TestReleaseListsIndexTwice(t *testing.T) {
	up := demoRepo(t, apttest.Options{Compressions: []string{".gz"}})
	rel := up.ReadFile(t, "dists/stable/Release")
	i := bytes.Index(rel, []byte("SHA256:\n"))
	if i < 0 {
		t.Fatal("no SHA256 in the fixture's Release")
	}
	dup := " " + strings.Repeat("0", 64) + " 1234 main/binary-amd64/Packages.gz\n"
	rel = append(rel[:i+len("SHA256:\n"):i+len("SHA256:\n")], append([]byte(dup), rel[i+len("SHA256:\n"):]...)...)
	up.WriteFile(t, "dists/stable/Release", rel)
	up.WriteFile(t, "dists/stable/InRelease", up.Key.ClearSign(t, rel))
	expectFailure(t, newMirror(t), newSource(t, aptConfig(up, nil)), "dists/stable/InRelease", "lists main/binary-amd64/Packages.gz twice with different checksums")
}
