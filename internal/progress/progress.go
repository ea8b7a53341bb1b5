// Package progress reports the progress of long-running tasks (syncs,
// downloads): as redrawn bars on a terminal, or as periodic structured log
// lines otherwise.
package progress

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/term"

	"github.com/mirrord/mirrord/internal/bytesize"
)

// Reporter starts tasks. Implementations are safe for concurrent use.
type Reporter interface {
	// Task starts a task counting unit; total is 0 if unknown.
	Task(name string, unit Unit, total int64) Task
}

// Task is one unit of reported work. Its methods are safe for concurrent
// use; calls after Done are ignored.
type Task interface {
	// Add counts n more units done (for a Bytes task, also bytes that
	// were already in the store).
	Add(n int64)
	SetTotal(n int64)
	// Fetched counts bytes actually downloaded for the task; a rate is
	// computed from these alone, so blobs already stored do not show as
	// an absurd speed. fetch.WithProgress feeds it.
	Fetched(n int64)
	Done(err error)
}

// Unit is what a task counts: Bytes, or items named by a plural noun
// (Items("indices")).
type Unit string

// Bytes is the unit of tasks that count bytes.
const Bytes Unit = ""

// Items is a unit of whole things, shown as "12/40 noun".
func Items(noun string) Unit { return Unit(noun) }

// format renders n in unit u.
func (u Unit) format(n int64) string {
	if u == Bytes {
		return bytesize.Format(n)
	}
	return fmt.Sprint(n)
}

// amount renders done (and total, when known) in unit u: "12/40 indices",
// "1.5 MiB/3.0 MiB", "512 B".
func (u Unit) amount(done, total int64) string {
	s := u.format(done)
	if total > 0 {
		s += "/" + u.format(total)
	}
	if u != Bytes {
		s += " " + string(u)
	}
	return s
}

// New reports to w: bars when w is a terminal (an *os.File on a TTY),
// otherwise log lines through log (or, when log is nil, a text logger
// writing to w): one when a task starts, one every 5s while it runs with
// done/total/rate, and one when it ends.
func New(w io.Writer, log *slog.Logger) Reporter {
	if w == nil && log == nil {
		return Discard()
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return newBars(w, func() int { return termWidth(f) }, barInterval)
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(w, nil))
	}
	return newLogReporter(log, logInterval)
}

func termWidth(f *os.File) int {
	w, _, err := term.GetSize(int(f.Fd()))
	if err != nil || w <= 0 {
		return 80
	}
	return w
}

// Discard returns a Reporter that reports nothing.
func Discard() Reporter { return discard{} }

type discard struct{}

func (discard) Task(string, Unit, int64) Task { return discard{} }
func (discard) Add(int64)                     {}
func (discard) SetTotal(int64)                {}
func (discard) Fetched(int64)                 {}
func (discard) Done(error)                    {}

// counter is the shared state of a task.
type counter struct {
	name    string
	unit    Unit
	start   time.Time
	done    atomic.Int64
	total   atomic.Int64
	fetched atomic.Int64
	ended   atomic.Bool
}

func newCounter(name string, unit Unit, total int64) *counter {
	c := &counter{name: name, unit: unit, start: time.Now()}
	c.total.Store(total)
	return c
}

func (c *counter) Add(n int64)      { c.done.Add(n) }
func (c *counter) SetTotal(n int64) { c.total.Store(n) }
func (c *counter) Fetched(n int64)  { c.fetched.Add(n) }

// amount is the task's done/total in its unit.
func (c *counter) amount() string { return c.unit.amount(c.done.Load(), c.total.Load()) }

// end marks the task finished; it reports false if it already was.
func (c *counter) end() bool { return c.ended.CompareAndSwap(false, true) }

// percent is done/total in percent, or -1 when total is unknown.
func percent(done, total int64) float64 {
	if total <= 0 {
		return -1
	}
	return min(100, 100*float64(done)/float64(total))
}

// rate is n per second over d.
func rate(n int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// ticker runs fn every interval while at least one task is active.
type ticker struct {
	interval time.Duration
	fn       func()
	active   int
	stop     chan struct{}
}

// started notes a new active task; the caller holds the reporter lock.
func (t *ticker) started() {
	t.active++
	if t.active > 1 {
		return
	}
	t.stop = make(chan struct{})
	go t.run(t.stop)
}

// finished notes a task's end; the caller holds the reporter lock.
func (t *ticker) finished() {
	t.active--
	if t.active == 0 {
		close(t.stop)
	}
}

func (t *ticker) run(stop chan struct{}) {
	tk := time.NewTicker(t.interval)
	defer tk.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tk.C:
			t.fn()
		}
	}
}
