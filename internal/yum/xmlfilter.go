package yum

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// childFilter says which children of a document's root element to keep,
// and how to rewrite them.
type childFilter struct {
	// keep decides from the child's start tag and its position among the
	// root's children (0-based).
	keep func(start xml.StartElement, index int) bool
	// edit, if set, rewrites each token of a kept child as it streams.
	edit func(tok xml.Token) xml.Token
	// whole, if set, gets each kept child complete (tokens copied) and
	// returns what to write; false drops it.
	whole func(toks []xml.Token) ([]xml.Token, bool)
	// rootAttrs are set on the root element (e.g. packages="N").
	rootAttrs map[string]string
	// after, if set, runs before the root's end tag is written: it may
	// copy the children of further documents in with copyChildren (each
	// through a filter of its own) and returns how many it wrote.
	after func(copyChildren func(rd io.Reader, f childFilter) (int, error)) (int, error)
}

// filterChildren copies the XML document rd to out with an XML
// declaration of its own, the root element (with f.rootAttrs applied) and
// those of its children f keeps, one per line. It returns how many
// children it wrote. The document is streamed: only a child that whole
// needs is held in memory.
func filterChildren(rd io.Reader, out io.Writer, f childFilter) (int, error) {
	c := &childCopier{d: xml.NewDecoder(&tagGapReader{r: rd}), bw: bufio.NewWriterSize(out, 64<<10), f: f, index: -1}
	c.tw = &tokenWriter{w: c.bw}
	for {
		tok, err := c.d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, _ := c.d.InputPos()
			return 0, fmt.Errorf("line %d: %w", line, err)
		}
		if err := c.token(tok); err != nil {
			return 0, err
		}
	}
	if c.depth != 0 || !c.rootDone {
		return 0, errors.New("unexpected end of document (truncated?)")
	}
	return c.kept, c.bw.Flush()
}

type childCopier struct {
	inner    bool // copying children into another document: no declaration, no root
	d        *xml.Decoder
	open     []xml.Name // the elements open at this point, outermost first
	bw       *bufio.Writer
	tw       *tokenWriter
	f        childFilter
	depth    int
	index    int
	mode     copyMode
	buf      []xml.Token
	kept     int
	rootDone bool
}

type copyMode int

const (
	between   copyMode = iota // outside any child of the root
	copying                   // streaming a kept child
	skipping                  // dropping a child
	buffering                 // collecting a child for whole
)

func (c *childCopier) token(tok xml.Token) error {
	switch t := tok.(type) {
	case xml.StartElement:
		if len(c.open) >= maxXMLDepth {
			return fmt.Errorf("%w: elements nested deeper than %d levels (no real metadata nests past 10)", ErrBadMetadata, maxXMLDepth)
		}
		c.open = append(c.open, t.Name)
		c.depth++
		switch c.depth {
		case 1:
			if !c.inner {
				c.writeRoot(t)
			}
			return nil
		case 2:
			c.index++
			c.mode = c.decide(t)
		}
	case xml.EndElement:
		if len(c.open) == 0 || c.open[len(c.open)-1] != t.Name {
			return fmt.Errorf("%w: unexpected </%s>", ErrBadMetadata, qname(t.Name))
		}
		c.open = c.open[:len(c.open)-1]
		c.depth--
		if c.depth == 0 {
			c.rootDone = true
			if c.inner {
				return nil
			}
			if c.f.after != nil {
				n, err := c.f.after(c.copyChildren)
				if err != nil {
					return err
				}
				c.kept += n
			}
			c.bw.WriteString("</" + qname(t.Name) + ">\n")
			return nil
		}
	}
	if c.depth < 2 && c.mode == between {
		return nil // whitespace, comments between children
	}
	c.emit(tok)
	if _, end := tok.(xml.EndElement); end && c.depth == 1 {
		c.endChild()
	}
	return nil
}

func (c *childCopier) decide(start xml.StartElement) copyMode {
	switch {
	case !c.f.keep(start, c.index):
		return skipping
	case c.f.whole != nil:
		c.buf = c.buf[:0]
		return buffering
	}
	return copying
}

func (c *childCopier) emit(tok xml.Token) {
	switch c.mode {
	case copying:
		if c.f.edit != nil {
			tok = c.f.edit(tok)
		}
		c.tw.token(tok)
	case buffering:
		c.buf = append(c.buf, xml.CopyToken(tok))
	}
}

func (c *childCopier) endChild() {
	switch c.mode {
	case copying:
		c.bw.WriteByte('\n')
		c.kept++
	case buffering:
		if toks, ok := c.f.whole(c.buf); ok {
			for _, t := range toks {
				c.tw.token(t)
			}
			c.bw.WriteByte('\n')
			c.kept++
		}
	}
	c.mode = between
}

func (c *childCopier) writeRoot(root xml.StartElement) {
	c.bw.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	attrs := make([]xml.Attr, 0, len(root.Attr)+len(c.f.rootAttrs))
	set := map[string]bool{}
	for _, a := range root.Attr {
		if v, ok := c.f.rootAttrs[qname(a.Name)]; ok {
			a.Value = v
			set[qname(a.Name)] = true
		}
		attrs = append(attrs, a)
	}
	for k, v := range c.f.rootAttrs {
		if !set[k] {
			attrs = append(attrs, xml.Attr{Name: xml.Name{Local: k}, Value: v})
		}
	}
	root.Attr = attrs
	c.tw.start(root)
	c.tw.closeStart()
	c.bw.WriteByte('\n')
}

// copyChildren copies the children of the document rd that f keeps into
// c's output, inside c's root.
func (c *childCopier) copyChildren(rd io.Reader, f childFilter) (int, error) {
	in := &childCopier{inner: true, d: xml.NewDecoder(rd), bw: c.bw, tw: c.tw, f: f, index: -1}
	for {
		tok, err := in.d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			line, _ := in.d.InputPos()
			return 0, fmt.Errorf("line %d: %w", line, err)
		}
		if err := in.token(tok); err != nil {
			return 0, err
		}
	}
	if in.depth != 0 || !in.rootDone {
		return 0, errors.New("unexpected end of document (truncated?)")
	}
	return in.kept, nil
}
