package progress

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mirrord/mirrord/internal/bytesize"
)

const (
	barInterval = 100 * time.Millisecond // at most 10 redraws a second
	maxBars     = 8                      // more tasks are summarized
	barWidth    = 20
)

// bars draws one line per active task at the bottom of a terminal,
// redrawing them in place; finished tasks leave a final line above.
type bars struct {
	w     io.Writer
	width func() int
	mu    sync.Mutex
	tasks []*barTask
	lines int // bar lines currently on screen
	tick  ticker
}

func newBars(w io.Writer, width func() int, interval time.Duration) *bars {
	b := &bars{w: w, width: width}
	b.tick = ticker{interval: interval, fn: b.redraw}
	return b
}

type barTask struct {
	*counter
	b        *bars
	lastDone int64     // bytes fetched at the last redraw; guarded by b.mu
	lastTime time.Time // guarded by b.mu
	rate     float64   // smoothed, guarded by b.mu
}

func (b *bars) Task(name string, unit Unit, total int64) Task {
	t := &barTask{counter: newCounter(name, unit, total), b: b}
	t.lastTime = t.start
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tasks = append(b.tasks, t)
	b.tick.started()
	return t
}

func (b *bars) redraw() {
	b.mu.Lock()
	defer b.mu.Unlock()
	var buf bytes.Buffer
	b.erase(&buf)
	b.draw(&buf, time.Now())
	b.w.Write(buf.Bytes())
}

// erase moves to the first bar line and clears everything below.
func (b *bars) erase(buf *bytes.Buffer) {
	if b.lines > 0 {
		fmt.Fprintf(buf, "\x1b[%dA", b.lines)
	}
	buf.WriteString("\r\x1b[J")
	b.lines = 0
}

func (b *bars) draw(buf *bytes.Buffer, now time.Time) {
	width := b.width() - 1 // never wrap: it would break the cursor math
	for i, t := range b.tasks {
		if i == maxBars {
			b.line(buf, fmt.Sprintf("... and %d more", len(b.tasks)-maxBars), width)
			break
		}
		name, meter, figures := t.bar(now)
		b.line(buf, fit(width, name, meter, figures), width)
	}
}

func (b *bars) line(buf *bytes.Buffer, s string, width int) {
	buf.WriteString("\r\x1b[2K")
	buf.WriteString(clip(s, width))
	buf.WriteByte('\n')
	b.lines++
}

// bar renders the task and updates its smoothed rate: its name, a meter
// (when the total is known) and the figures.
func (t *barTask) bar(now time.Time) (name, meter, figures string) {
	done, total, fetched := t.done.Load(), t.total.Load(), t.fetched.Load()
	if dt := now.Sub(t.lastTime); dt > 0 {
		inst := rate(fetched-t.lastDone, dt)
		if t.lastDone == 0 && t.rate == 0 {
			t.rate = inst
		}
		t.rate = 0.7*t.rate + 0.3*inst
		t.lastDone, t.lastTime = fetched, now
	}
	speed := ""
	if fetched > 0 {
		speed = "  " + bytesize.FormatFloat(t.rate) + "/s"
	}
	p := percent(done, total)
	if p < 0 {
		return t.name, "", "  " + t.amount() + speed
	}
	fill := int(p / 100 * barWidth)
	meter = " [" + strings.Repeat("=", fill) + strings.Repeat(" ", barWidth-fill) + "]"
	return t.name, meter, fmt.Sprintf(" %5.1f%%  %s%s", p, t.amount(), speed)
}

func (t *barTask) Done(err error) {
	if !t.end() {
		return
	}
	b := t.b
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tasks = slices.DeleteFunc(b.tasks, func(o *barTask) bool { return o == t })
	b.tick.finished()
	var buf bytes.Buffer
	b.erase(&buf)
	buf.WriteString(t.final(err))
	buf.WriteByte('\n')
	// The remaining bars come back on the next tick, keeping the rate
	// of redraws bounded.
	b.w.Write(buf.Bytes())
}

func (t *barTask) final(err error) string {
	elapsed := time.Since(t.start).Round(time.Millisecond)
	if err != nil {
		// The error itself is reported once, by whoever ran the work.
		return fmt.Sprintf("[fail] %s after %s, %s", t.name, elapsed, t.amount())
	}
	s := fmt.Sprintf("[done] %s  %s in %s", t.name, t.amount(), elapsed)
	if f := t.fetched.Load(); f > 0 {
		s += fmt.Sprintf(" (%s downloaded, %s/s)", bytesize.FormatFloat(float64(f)), bytesize.FormatFloat(rate(f, time.Since(t.start))))
	}
	return s
}

// fit lays out a bar within width runes: on a narrow terminal the meter
// goes first, then the name is shortened, so the figures stay readable.
func fit(width int, name, meter, figures string) string {
	const minName = 12
	room := width - utf8.RuneCountInString(figures)
	if room-utf8.RuneCountInString(meter) < min(minName, utf8.RuneCountInString(name)) {
		meter = ""
	}
	room -= utf8.RuneCountInString(meter)
	if r := []rune(name); len(r) > room && room > 1 {
		name = string(r[:room-1]) + "…"
	}
	return name + meter + figures
}

// clip shortens s to width runes.
func clip(s string, width int) string {
	if width <= 0 {
		return ""
	}
	r := []rune(s)
	if len(r) <= width {
		return s
	}
	return string(r[:width])
}
