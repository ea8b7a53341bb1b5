package progress

import (
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/mirrord/mirrord/internal/bytesize"
)

const logInterval = 5 * time.Second

// logReporter writes a line when a task starts, every interval while it
// runs, and when it ends.
type logReporter struct {
	log   *slog.Logger
	mu    sync.Mutex
	tasks []*logTask
	tick  ticker
}

func newLogReporter(log *slog.Logger, interval time.Duration) *logReporter {
	r := &logReporter{log: log}
	r.tick = ticker{interval: interval, fn: r.report}
	return r
}

type logTask struct {
	*counter
	r        *logReporter
	lastDone int64     // bytes fetched at the last line; guarded by r.mu
	lastTime time.Time // guarded by r.mu
}

func (r *logReporter) Task(name string, unit Unit, total int64) Task {
	t := &logTask{counter: newCounter(name, unit, total), r: r}
	t.lastTime = t.start
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks = append(r.tasks, t)
	r.tick.started()
	attrs := []any{"task", name}
	if total > 0 {
		attrs = append(attrs, "total", unit.amount(total, 0))
	}
	r.log.Info("task started", attrs...)
	return t
}

// report logs every active task, with the rate since its last line.
func (r *logReporter) report() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, t := range r.tasks {
		fetched := t.fetched.Load()
		attrs := append([]any{"task", t.name}, t.attrs()...)
		if fetched > t.lastDone {
			attrs = append(attrs, "rate", bytesize.FormatFloat(rate(fetched-t.lastDone, now.Sub(t.lastTime)))+"/s")
		}
		r.log.Info("task progress", attrs...)
		t.lastDone, t.lastTime = fetched, now
	}
}

func (t *logTask) Done(err error) {
	if !t.end() {
		return
	}
	r := t.r
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks = slices.DeleteFunc(r.tasks, func(o *logTask) bool { return o == t })
	r.tick.finished()
	elapsed := time.Since(t.start)
	attrs := append([]any{"task", t.name}, t.attrs()...)
	attrs = append(attrs, "elapsed", elapsed.Round(time.Millisecond))
	if f := t.fetched.Load(); f > 0 {
		attrs = append(attrs, "downloaded", bytesize.FormatFloat(float64(f)), "rate", bytesize.FormatFloat(rate(f, elapsed))+"/s")
	}
	if err != nil {
		// The error itself is reported once, by whoever ran the work.
		r.log.Warn("task failed", attrs...)
		return
	}
	r.log.Info("task done", attrs...)
}

// attrs are the done (with total) and percent attributes.
func (c *counter) attrs() []any {
	done, total := c.done.Load(), c.total.Load()
	attrs := []any{"done", c.unit.amount(done, total)}
	if total > 0 {
		attrs = append(attrs, "percent", math.Round(percent(done, total)*10)/10)
	}
	return attrs
}
