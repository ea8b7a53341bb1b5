package yum

import (
	"bufio"
	"encoding/xml"
	"strings"
)

// escapeText escapes character data.
func escapeText(s string) string { return escape(s, false) }

// escapeAttr escapes a double-quoted attribute value, keeping whitespace
// characters intact through attribute-value normalisation.
func escapeAttr(s string) string { return escape(s, true) }

func escape(s string, attr bool) string {
	if !strings.ContainsAny(s, "&<>\"\r\n\t") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '&':
			b.WriteString("&amp;")
		case c == '<':
			b.WriteString("&lt;")
		case c == '>':
			b.WriteString("&gt;")
		case c == '\r':
			b.WriteString("&#13;")
		case attr && c == '"':
			b.WriteString("&quot;")
		case attr && c == '\n':
			b.WriteString("&#10;")
		case attr && c == '\t':
			b.WriteString("&#9;")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// qname is a raw (unresolved) name as written: "rpm:entry", "xml:base".
func qname(n xml.Name) string {
	if n.Space == "" {
		return n.Local
	}
	return n.Space + ":" + n.Local
}

// tokenWriter writes tokens read with xml.Decoder.RawToken back out as
// XML text, keeping the prefixes as they were written. An element with no
// content is written self-closing (<x/>): a start tag stays open until the
// next token shows whether content follows.
type tokenWriter struct {
	w    *bufio.Writer
	open bool // a start tag awaits its ">" or "/>"
}

// closeStart finishes a pending start tag with ">".
func (tw *tokenWriter) closeStart() {
	if tw.open {
		tw.w.WriteByte('>')
		tw.open = false
	}
}

func (tw *tokenWriter) start(e xml.StartElement) {
	tw.closeStart()
	tw.w.WriteByte('<')
	tw.w.WriteString(qname(e.Name))
	for _, a := range e.Attr {
		tw.w.WriteByte(' ')
		tw.w.WriteString(qname(a.Name))
		tw.w.WriteString(`="`)
		tw.w.WriteString(escapeAttr(a.Value))
		tw.w.WriteByte('"')
	}
	tw.open = true
}

func (tw *tokenWriter) token(t xml.Token) {
	if _, end := t.(xml.EndElement); end && tw.open {
		tw.w.WriteString("/>")
		tw.open = false
		return
	}
	tw.closeStart()
	switch t := t.(type) {
	case xml.StartElement:
		tw.start(t)
	case xml.EndElement:
		tw.w.WriteString("</")
		tw.w.WriteString(qname(t.Name))
		tw.w.WriteByte('>')
	case xml.CharData:
		tw.w.WriteString(escapeText(string(t)))
	case xml.Comment:
		tw.w.WriteString("<!--")
		tw.w.Write(t)
		tw.w.WriteString("-->")
	}
}

// attr returns the value of the attribute written as name ("href",
// "xml:base"), or "".
func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if qname(a.Name) == name {
			return a.Value
		}
	}
	return ""
}
