package yum

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/mirrord/mirrord/internal/rpmver"
)

// pkg is one <package> of primary.xml: what mirroring needs, plus the
// capabilities a dependency closure needs (when parsed withDeps).
type pkg struct {
	Index    int // position in primary.xml
	Name     string
	Arch     string
	EVR      rpmver.EVR
	Checksum Checksum // also the pkgid that filelists and other refer to
	Href     string
	Base     string // xml:base of the location, if any
	Size     int64  // <size package=...>

	Provides []rpmver.Dep
	Requires []rpmver.Dep
	Files    []string // the files primary lists (a subset; filelists has all)

	Path string // path in the tree, set by locate
}

// NEVRA is name-[epoch:]version-release.arch, for messages.
func (p *pkg) NEVRA() string { return p.Name + "-" + p.EVR.String() + "." + p.Arch }

// itemVersion is the version shown in snapshot diffs: [EPOCH:]VERSION-RELEASE.
func (p *pkg) itemVersion() string { return p.EVR.String() }

// maxXMLDepth caps element nesting in every metadata file mirrord reads
// as a stream: a hostile document of nothing but start tags must fail
// early, not grow a stack until the size cap.
const maxXMLDepth = 256

// maxTokenBytes caps the run of bytes between two '<' in XML metadata:
// one text node or tag. encoding/xml holds a whole token in memory, so
// without it a hostile multi-GB text node would be allocated whole. Real
// tokens are a few KiB (a package description).
const maxTokenBytes = 16 << 20

// tagGapReader fails a stream with more than maxTokenBytes between two
// '<' bytes.
type tagGapReader struct {
	r   io.Reader
	gap int64
	off int64
}

func (t *tagGapReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	for rest := p[:n]; len(rest) > 0; {
		i := bytes.IndexByte(rest, '<')
		if i < 0 {
			i = len(rest)
		}
		if t.gap += int64(i); t.gap > maxTokenBytes {
			return 0, fmt.Errorf("%w: more than %d bytes without markup near byte %d (no real metadata has a text node or tag that large)", ErrBadMetadata, maxTokenBytes, t.off)
		}
		if i < len(rest) {
			t.gap = 0
			i++
		}
		rest = rest[i:]
	}
	t.off += int64(n)
	return n, err
}

// primaryParser reads primary.xml as a stream of tokens, one package at a
// time, without holding the document.
type primaryParser struct {
	d        *xml.Decoder
	withDeps bool
	declared int // the packages="N" attribute, -1 if absent
	pkgs     int
	stack    []string
	cur      *pkg
	text     strings.Builder
	deps     *[]rpmver.Dep
}

// parsePrimary calls fn for every package of the primary.xml read from r.
// withDeps also collects provides, requires and files.
func parsePrimary(r io.Reader, withDeps bool, fn func(*pkg) error) error {
	p := &primaryParser{d: xml.NewDecoder(&tagGapReader{r: r}), withDeps: withDeps, declared: -1}
	for {
		tok, err := p.d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("line %d: %w", p.line(), err)
		}
		if err := p.token(tok, fn); err != nil {
			return fmt.Errorf("line %d: %w", p.line(), err)
		}
	}
	switch {
	case len(p.stack) != 0:
		return fmt.Errorf("unexpected end of document inside <%s> (truncated?)", p.stack[len(p.stack)-1])
	case p.declared >= 0 && p.declared != p.pkgs:
		return fmt.Errorf("<metadata packages=\"%d\"> but %d packages listed", p.declared, p.pkgs)
	}
	return nil
}

func (p *primaryParser) line() int {
	l, _ := p.d.InputPos()
	return l
}

func (p *primaryParser) token(tok xml.Token, fn func(*pkg) error) error {
	switch t := tok.(type) {
	case xml.StartElement:
		if len(p.stack) >= maxXMLDepth {
			return fmt.Errorf("elements nested deeper than %d levels (no real primary.xml nests past 6)", maxXMLDepth)
		}
		p.stack = append(p.stack, t.Name.Local)
		return p.start(t)
	case xml.EndElement:
		if len(p.stack) == 0 || p.stack[len(p.stack)-1] != t.Name.Local {
			return fmt.Errorf("unexpected </%s>", qname(t.Name))
		}
		p.stack = p.stack[:len(p.stack)-1]
		return p.end(t.Name.Local, fn)
	case xml.CharData:
		if p.cur != nil {
			p.text.Write(t)
		}
	}
	return nil
}

func (p *primaryParser) start(e xml.StartElement) error {
	p.text.Reset()
	switch e.Name.Local {
	case "metadata":
		if len(p.stack) == 1 {
			if v := attr(e, "packages"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil {
					return fmt.Errorf("bad packages attribute %q", v)
				}
				p.declared = n
			}
		}
	case "package":
		if len(p.stack) != 2 {
			return errors.New("<package> outside <metadata>")
		}
		p.cur = &pkg{Index: p.pkgs}
		return nil
	}
	if p.cur == nil {
		return nil
	}
	return p.startInPackage(e)
}

// startInPackage handles an element inside <package>; direct children
// are at depth 3 (metadata/package/x).
func (p *primaryParser) startInPackage(e xml.StartElement) error {
	c := p.cur
	if len(p.stack) == 3 {
		return p.startField(e)
	}
	switch e.Name.Local {
	case "provides", "requires":
		if p.withDeps && e.Name.Space == "rpm" && len(p.stack) == 4 {
			p.deps = &c.Provides
			if e.Name.Local == "requires" {
				p.deps = &c.Requires
			}
		}
	case "entry":
		if p.deps != nil {
			return p.entry(e)
		}
	}
	return nil
}

func (p *primaryParser) startField(e xml.StartElement) error {
	c := p.cur
	switch e.Name.Local {
	case "version":
		c.EVR = rpmver.NewEVR(attr(e, "epoch"), attr(e, "ver"), attr(e, "rel"))
	case "checksum":
		c.Checksum.Type = attr(e, "type")
	case "size":
		n, err := parseSize(attr(e, "package"))
		if err != nil {
			return fmt.Errorf("package %s: %w", c.Name, err)
		}
		c.Size = n
	case "location":
		c.Href, c.Base = attr(e, "href"), attr(e, "xml:base")
	}
	return nil
}

func (p *primaryParser) entry(e xml.StartElement) error {
	flags, err := rpmver.ParseFlags(attr(e, "flags"))
	if err != nil {
		return fmt.Errorf("package %s: %w", p.cur.Name, err)
	}
	*p.deps = append(*p.deps, rpmver.Dep{
		Name: attr(e, "name"), Flags: flags,
		EVR: rpmver.NewEVR(attr(e, "epoch"), attr(e, "ver"), attr(e, "rel")),
	})
	return nil
}

func (p *primaryParser) end(local string, fn func(*pkg) error) error {
	c := p.cur
	if c == nil {
		return nil
	}
	text := strings.TrimSpace(p.text.String())
	// After the pop, a direct child of <package> leaves depth 2.
	field := len(p.stack) == 2
	switch {
	case field && local == "name":
		c.Name = text
	case field && local == "arch":
		c.Arch = text
	case field && local == "checksum":
		sum, err := newChecksum(c.Checksum.Type, text)
		if err != nil {
			return fmt.Errorf("package %s: %w", c.Name, err)
		}
		c.Checksum = sum
	case local == "file":
		if p.withDeps {
			c.Files = append(c.Files, text)
		}
	case local == "provides" || local == "requires":
		p.deps = nil
	case local == "package":
		p.cur = nil
		p.pkgs++
		return p.finish(c, fn)
	}
	p.text.Reset()
	return nil
}

func (p *primaryParser) finish(c *pkg, fn func(*pkg) error) error {
	switch {
	case c.Name == "" || c.Arch == "":
		return fmt.Errorf("package #%d has no name or arch", c.Index+1)
	case c.Checksum.Hex == "":
		return fmt.Errorf("package %s has no checksum", c.NEVRA())
	case c.Href == "":
		return fmt.Errorf("package %s has no location", c.NEVRA())
	case c.EVR.Version == "":
		return fmt.Errorf("package %s has no version", c.Name)
	}
	return fn(c)
}
