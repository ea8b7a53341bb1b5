package apt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
)

// maxParagraph caps one deb822 paragraph (a Packages or Sources stanza).
const maxParagraph = 16 << 20

// paragraphs reads deb822 paragraphs (RFC822-style stanzas separated by
// blank lines) from a stream, one at a time: it never holds more than the
// current paragraph, so an index of any size is parsed in constant memory.
// The slices it returns are valid until the next call to next.
type paragraphs struct {
	br     *bufio.Reader
	buf    []byte  // the current paragraph's lines, each ending in '\n'
	fields []field // offsets into buf
	line   int     // lines read so far
	start  int     // line number where the current paragraph starts
	eof    bool
}

// field is a "Name: value" in paragraphs.buf; the value runs to the end of
// its last continuation line, without the final newline.
type field struct {
	name       [2]int
	valueStart int
	valueEnd   int
}

func newParagraphs(r io.Reader) *paragraphs {
	return &paragraphs{br: bufio.NewReaderSize(r, 256<<10)}
}

// next reads the next paragraph; it returns false at the end of input.
func (p *paragraphs) next() (bool, error) {
	p.buf, p.fields = p.buf[:0], p.fields[:0]
	for !p.eof {
		line, err := p.readLine()
		if err != nil {
			return false, err
		}
		if line == nil {
			break
		}
		if isBlank(line) {
			if len(p.fields) > 0 {
				return true, nil
			}
			continue // blank lines before a paragraph
		}
		if line[0] == '#' {
			continue // comment lines are not part of the data
		}
		if err := p.addLine(line); err != nil {
			return false, err
		}
	}
	return len(p.fields) > 0, nil
}

// readLine returns the next line including '\n' (added when the input
// lacks a final newline), or nil at the end of input.
func (p *paragraphs) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, err := p.br.ReadSlice('\n')
		if len(line)+len(chunk) > maxParagraph {
			return nil, fmt.Errorf("line %d: longer than %d bytes", p.line+1, maxParagraph)
		}
		switch {
		case err == nil:
			p.line++
			if line == nil {
				return chunk, nil
			}
			return append(line, chunk...), nil
		case errors.Is(err, bufio.ErrBufferFull):
			line = append(line, chunk...)
		case errors.Is(err, io.EOF):
			p.eof = true
			line = append(line, chunk...)
			if len(line) == 0 {
				return nil, nil
			}
			p.line++
			return append(line, '\n'), nil
		default:
			return nil, err
		}
	}
}

func isBlank(line []byte) bool { return len(bytes.TrimSpace(line)) == 0 }

// addLine appends a field line or a continuation line to the paragraph.
func (p *paragraphs) addLine(line []byte) error {
	if len(p.buf)+len(line) > maxParagraph {
		return fmt.Errorf("line %d: paragraph starting at line %d is larger than %d bytes", p.line, p.start, maxParagraph)
	}
	off := len(p.buf)
	p.buf = append(p.buf, line...)
	end := len(p.buf) - 1 // without '\n'
	if line[0] == ' ' || line[0] == '\t' {
		if len(p.fields) == 0 {
			return fmt.Errorf("line %d: continuation line without a field before it", p.line)
		}
		p.fields[len(p.fields)-1].valueEnd = trimRight(p.buf, end)
		return nil
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return fmt.Errorf("line %d: want \"Field: value\", got %q", p.line, truncate(line, 60))
	}
	if len(p.fields) == 0 {
		p.start = p.line
	}
	vs := off + colon + 1
	for vs < end && (p.buf[vs] == ' ' || p.buf[vs] == '\t') {
		vs++
	}
	p.fields = append(p.fields, field{name: [2]int{off, off + colon}, valueStart: vs, valueEnd: trimRight(p.buf, end)})
	return nil
}

func trimRight(b []byte, end int) int {
	for end > 0 && (b[end-1] == ' ' || b[end-1] == '\t' || b[end-1] == '\r') {
		end--
	}
	return end
}

func truncate(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// raw is the current paragraph as read (without comment and blank lines),
// each line ending in '\n'.
func (p *paragraphs) raw() []byte { return p.buf }

// each calls fn with every field of the current paragraph.
func (p *paragraphs) each(fn func(name, value []byte)) {
	for _, f := range p.fields {
		fn(p.buf[f.name[0]:f.name[1]], p.value(f))
	}
}

func (p *paragraphs) value(f field) []byte { return p.buf[min(f.valueStart, f.valueEnd):f.valueEnd] }

// get returns the value of the named field (case-insensitive).
func (p *paragraphs) get(name string) ([]byte, bool) {
	for _, f := range p.fields {
		if bytes.EqualFold(p.buf[f.name[0]:f.name[1]], []byte(name)) {
			return p.value(f), true
		}
	}
	return nil, false
}
