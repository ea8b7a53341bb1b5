package yum

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strconv"
	"strings"
)

// repomd is a parsed repodata/repomd.xml.
type repomd struct {
	Revision string
	Data     []dataEntry
}

// dataEntry is one <data> of repomd.xml: a metadata file.
type dataEntry struct {
	Type            string
	Checksum        Checksum
	OpenChecksum    *Checksum // of the decompressed content
	HeaderChecksum  *Checksum // zchunk header
	Href, Base      string    // location href and xml:base
	Timestamp       string
	Size            int64 // 0: not given
	OpenSize        int64
	HeaderSize      int64
	DatabaseVersion string
}

type repomdXML struct {
	XMLName  xml.Name  `xml:"repomd"`
	Revision string    `xml:"revision"`
	Data     []dataXML `xml:"data"`
}

type checksumXML struct {
	Type  string `xml:"type,attr"`
	Value string `xml:",chardata"`
}

type dataXML struct {
	Type           string       `xml:"type,attr"`
	Checksum       *checksumXML `xml:"checksum"`
	OpenChecksum   *checksumXML `xml:"open-checksum"`
	HeaderChecksum *checksumXML `xml:"header-checksum"`
	Location       struct {
		Href string `xml:"href,attr"`
		Base string `xml:"http://www.w3.org/XML/1998/namespace base,attr"`
	} `xml:"location"`
	Timestamp       string `xml:"timestamp"`
	Size            string `xml:"size"`
	OpenSize        string `xml:"open-size"`
	HeaderSize      string `xml:"header-size"`
	DatabaseVersion string `xml:"database_version"`
}

// parseRepomd parses and validates repomd.xml: every <data> needs a type,
// a supported checksum and a location; types are unique; primary exists.
func parseRepomd(data []byte) (*repomd, error) {
	var x repomdXML
	if err := xml.Unmarshal(data, &x); err != nil {
		return nil, fmt.Errorf("%w: repomd.xml: %v", ErrBadMetadata, err)
	}
	m := &repomd{Revision: strings.TrimSpace(x.Revision)}
	seen := map[string]bool{}
	for i, d := range x.Data {
		e, err := d.entry()
		if err != nil {
			return nil, fmt.Errorf("%w: repomd.xml <data> #%d (type %q): %v", ErrBadMetadata, i+1, d.Type, err)
		}
		if seen[e.Type] {
			return nil, fmt.Errorf("%w: repomd.xml lists type %q twice", ErrBadMetadata, e.Type)
		}
		seen[e.Type] = true
		m.Data = append(m.Data, e)
	}
	if m.find("primary") == nil {
		return nil, fmt.Errorf("%w: repomd.xml has no primary metadata", ErrBadMetadata)
	}
	return m, nil
}

func (d dataXML) entry() (dataEntry, error) {
	e := dataEntry{
		Type: strings.TrimSpace(d.Type), Href: strings.TrimSpace(d.Location.Href), Base: strings.TrimSpace(d.Location.Base),
		Timestamp: strings.TrimSpace(d.Timestamp), DatabaseVersion: strings.TrimSpace(d.DatabaseVersion),
	}
	if e.Type == "" {
		return e, fmt.Errorf("no type attribute")
	}
	if e.Href == "" {
		return e, fmt.Errorf("no location href")
	}
	if d.Checksum == nil {
		return e, fmt.Errorf("no checksum")
	}
	var err error
	if e.Checksum, err = newChecksum(d.Checksum.Type, d.Checksum.Value); err != nil {
		return e, err
	}
	if e.OpenChecksum, err = optChecksum(d.OpenChecksum); err != nil {
		return e, fmt.Errorf("open-checksum: %w", err)
	}
	if e.HeaderChecksum, err = optChecksum(d.HeaderChecksum); err != nil {
		return e, fmt.Errorf("header-checksum: %w", err)
	}
	for _, f := range []struct {
		name string
		s    string
		dst  *int64
	}{{"size", d.Size, &e.Size}, {"open-size", d.OpenSize, &e.OpenSize}, {"header-size", d.HeaderSize, &e.HeaderSize}} {
		if *f.dst, err = parseSize(f.s); err != nil {
			return e, fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return e, nil
}

func optChecksum(c *checksumXML) (*Checksum, error) {
	if c == nil {
		return nil, nil
	}
	sum, err := newChecksum(c.Type, c.Value)
	if err != nil {
		return nil, err
	}
	return &sum, nil
}

// parseSize reads an optional non-negative size ("" is 0, unknown).
func parseSize(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n, nil
}

func (m *repomd) find(typ string) *dataEntry {
	for i := range m.Data {
		if m.Data[i].Type == typ {
			return &m.Data[i]
		}
	}
	return nil
}

// encode writes repomd.xml the way createrepo_c lays it out. The output
// depends only on m, so unchanged input gives byte-identical output.
func (m *repomd) encode() []byte {
	var b bytes.Buffer
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<repomd xmlns="http://linux.duke.edu/metadata/repo" xmlns:rpm="http://linux.duke.edu/metadata/rpm">` + "\n")
	if m.Revision != "" {
		fmt.Fprintf(&b, "  <revision>%s</revision>\n", escapeText(m.Revision))
	}
	for _, d := range m.Data {
		fmt.Fprintf(&b, "  <data type=\"%s\">\n", escapeAttr(d.Type))
		writeChecksum(&b, "checksum", &d.Checksum)
		writeChecksum(&b, "open-checksum", d.OpenChecksum)
		writeChecksum(&b, "header-checksum", d.HeaderChecksum)
		fmt.Fprintf(&b, "    <location href=\"%s\"/>\n", escapeAttr(d.Href))
		if d.Timestamp != "" {
			fmt.Fprintf(&b, "    <timestamp>%s</timestamp>\n", escapeText(d.Timestamp))
		}
		writeSize(&b, "size", d.Size)
		writeSize(&b, "open-size", d.OpenSize)
		writeSize(&b, "header-size", d.HeaderSize)
		if d.DatabaseVersion != "" {
			fmt.Fprintf(&b, "    <database_version>%s</database_version>\n", escapeText(d.DatabaseVersion))
		}
		b.WriteString("  </data>\n")
	}
	b.WriteString("</repomd>\n")
	return b.Bytes()
}

func writeChecksum(b *bytes.Buffer, elem string, c *Checksum) {
	if c != nil {
		fmt.Fprintf(b, "    <%s type=\"%s\">%s</%s>\n", elem, escapeAttr(c.Type), c.Hex, elem)
	}
}

func writeSize(b *bytes.Buffer, elem string, n int64) {
	if n > 0 {
		fmt.Fprintf(b, "    <%s>%d</%s>\n", elem, n, elem)
	}
}
