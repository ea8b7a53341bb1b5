package progress

import (
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"
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
	lastDone int64     // guarded by r.mu
	lastTime time.Time // guarded by r.mu
}

func (r *logReporter) Task(name string, total int64) Task {
	t := &logTask{counter: newCounter(name, total), r: r}
	t.lastTime = t.start
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tasks = append(r.tasks, t)
	r.tick.started()
	attrs := []any{"task", name}
	if total > 0 {
		attrs = append(attrs, "total", total)
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
		done := t.done.Load()
		attrs := amounts(done, t.total.Load())
		attrs = append(attrs, "rate", humanBytes(rate(done-t.lastDone, now.Sub(t.lastTime)))+"/s")
		r.log.Info("task progress", append([]any{"task", t.name}, attrs...)...)
		t.lastDone, t.lastTime = done, now
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
	done := t.done.Load()
	attrs := append([]any{"task", t.name}, amounts(done, t.total.Load())...)
	attrs = append(attrs, "elapsed", elapsed.Round(time.Millisecond), "rate", humanBytes(rate(done, elapsed))+"/s")
	if err != nil {
		// The error itself is reported once, by whoever ran the work.
		r.log.Warn("task failed", attrs...)
		return
	}
	r.log.Info("task done", attrs...)
}

// amounts are the done/total/percent attributes.
func amounts(done, total int64) []any {
	attrs := []any{"done", done}
	if total > 0 {
		p := math.Round(percent(done, total)*10) / 10
		attrs = append(attrs, "total", total, "percent", p)
	}
	return attrs
}
