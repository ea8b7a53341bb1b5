package yum

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/yum/yumtest"
)

// Hostile metadata, parser level: each is refused with ErrBadMetadata-style
// errors, reading no more than its cap.
func TestHostileXML(t *testing.T) {
	deep := "<metadata>" + strings.Repeat("<a>", 300) + strings.Repeat("</a>", 300) + "</metadata>"
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">` +
		`<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>` +
		`<metadata packages="1"><package type="rpm"><name>&lol3;</name></package></metadata>`
	external := `<?xml version="1.0"?><!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><metadata><package><name>&x;</name></package></metadata>`
	for _, c := range []struct{ name, doc, want string }{
		{"deep nesting", deep, "nested deeper than 256"},
		{"entity expansion", laughs, "invalid character entity &lol3;"},
		{"external entity", external, "invalid character entity &x;"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := parsePrimary(strings.NewReader(c.doc), true, func(*pkg) error { return nil })
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("primary: %v, want %q", err, c.want)
			}
			if _, err := filterChildren(strings.NewReader(strings.Replace(c.doc, "<metadata", "<filelists", 1)), io.Discard, childFilter{keep: func(xml.StartElement, int) bool { return true }}); err == nil {
				t.Error("filelists rewriting accepted it")
			}
		})
	}
	t.Run("4 GiB text node", func(t *testing.T) {
		src := &endlessReader{c: 'x', n: 4 << 30}
		err := parsePrimary(io.MultiReader(strings.NewReader("<metadata><package><name>"), src), false, func(*pkg) error { return nil })
		if !errors.Is(err, ErrBadMetadata) || !strings.Contains(err.Error(), "without markup") {
			t.Errorf("err = %v", err)
		}
		if src.i > maxTokenBytes+(1<<20) {
			t.Errorf("read %d bytes of one text node before refusing it", src.i)
		}
	})
}

// endlessReader yields n bytes of c without holding them.
type endlessReader struct {
	c    byte
	n, i int64
}

func (e *endlessReader) Read(p []byte) (int, error) {
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

// A decompression bomb in every compression createrepo_c writes (zstd by
// recompression): primary.xml with 16 MiB of trailing blanks, its
// repomd.xml entry (checksum and size of the bomb, the real open-size)
// re-signed. The sync stops at the open-size and makes no snapshot.
func TestBombEveryCompression(t *testing.T) {
	f := yumtest.NewFixture(t, nil)
	tools := map[string][]string{"gz": {"gzip", "-c", "-9"}, "xz": {"xz", "-c"}, "bz2": {"bzip2", "-c"}, "zstd": {"zstd", "-q", "-c"}}
	suffix := map[string]string{"gz": ".gz", "xz": ".xz", "bz2": ".bz2", "zstd": ".zst"}
	for _, c := range []string{"gz", "xz", "bz2", "zstd"} {
		t.Run(c, func(t *testing.T) {
			dir := f.Repo(t, yumtest.RepoOptions{Compression: c})
			path := findFile(t, dir, "-primary.xml"+suffix[c])
			rc, _, err := decompress(bytes.NewReader(readFile(t, path)), path)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			bomb := compressWith(t, tools[c], append(plain, bytes.Repeat([]byte("\n"), 16<<20)...))
			if len(bomb) > 64<<10 {
				t.Fatalf("the %s bomb is %d bytes; want a few KiB", c, len(bomb))
			}
			os.WriteFile(path, bomb, 0o644)
			setPrimaryEntry(t, dir, bomb)
			f.Signer.DetachSign(t, dir+"/repodata/repomd.xml")
			srv := yumtest.Serve(t, dir)
			b := newBadCase(t, f)
			b.fail(newSource(t, srv, f, nil), store.ErrTooLarge, "primary metadata", srv.URL, "decompresses to more than "+strconv.Itoa(len(plain))+" bytes")
		})
	}
}

func compressWith(t *testing.T, argv []string, data []byte) []byte {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return out
}

// setPrimaryEntry points repomd.xml's primary <checksum> and <size> at data.
func setPrimaryEntry(t *testing.T, dir string, data []byte) {
	t.Helper()
	md := dir + "/repodata/repomd.xml"
	doc := string(readFile(t, md))
	re := regexp.MustCompile(`(?s)<data type="primary">.*?</data>`)
	block := re.FindString(doc)
	if block == "" {
		t.Fatalf("no primary entry in %s", md)
	}
	sum := sha256.Sum256(data)
	nb := regexp.MustCompile(`<checksum type="sha256">[0-9a-f]+</checksum>`).ReplaceAllString(block, `<checksum type="sha256">`+hex.EncodeToString(sum[:])+`</checksum>`)
	nb = regexp.MustCompile(`<size>\d+</size>`).ReplaceAllString(nb, "<size>"+strconv.Itoa(len(data))+"</size>")
	os.WriteFile(md, []byte(strings.Replace(doc, block, nb, 1)), 0o644)
}

// Absolute package locations are refused like "../" ones.
func TestAbsoluteHref(t *testing.T) {
	f := yumtest.NewFixture(t, nil)
	srv := yumtest.Serve(t, f.Repo(t, yumtest.RepoOptions{LocationPrefix: "/"}))
	b := newBadCase(t, f)
	b.fail(newSource(t, srv, f, nil), ErrUnsafeLocation, `"/Packages/`, "is an absolute path")
}
