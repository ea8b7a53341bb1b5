package progress

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// TaskState is one task as a Hub reports it.
type TaskState struct {
	Name    string  `json:"name"`
	Unit    string  `json:"unit"` // "bytes", or what the task counts ("indices", "packages", ...)
	Done    int64   `json:"done"`
	Total   int64   `json:"total,omitempty"` // 0: unknown
	Percent float64 `json:"percent"`         // -1 when Total is unknown
	Fetched int64   `json:"fetched"`         // bytes actually downloaded
	Rate    float64 `json:"rate"`            // Fetched per second since the task started (0: nothing downloaded)
	ETA     float64 `json:"eta_seconds,omitempty"`
	State   string  `json:"state"` // running, done, failed
	Error   string  `json:"error,omitempty"`
	Elapsed float64 `json:"elapsed_seconds"`
}

// LogLine is one log record a Hub captured.
type LogLine struct {
	Time    time.Time `json:"time"`
	Level   string    `json:"level"`
	Message string    `json:"msg"`
	Attrs   string    `json:"attrs,omitempty"` // key=value ...
}

// maxLogLines bounds the log a Hub keeps; older lines are dropped.
const maxLogLines = 500

// Hub is a Reporter that remembers every task it started, and a log
// handler that remembers the lines logged through it, so a sync's progress
// can be shown to someone who asks (the web UI's live sync page). Reset
// starts a new round (one sync). Safe for concurrent use.
type Hub struct {
	mu      sync.Mutex
	tasks   []*hubTask
	log     []LogLine
	dropped int
	version atomic.Uint64 // bumped on every change a reader could see
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{} }

type hubTask struct {
	*counter
	h      *Hub
	finish time.Time // guarded by h.mu
	err    string    // guarded by h.mu
}

// Task implements Reporter.
func (h *Hub) Task(name string, unit Unit, total int64) Task {
	t := &hubTask{counter: newCounter(name, unit, total), h: h}
	h.mu.Lock()
	h.tasks = append(h.tasks, t)
	h.mu.Unlock()
	h.version.Add(1)
	return t
}

func (t *hubTask) Add(n int64) {
	t.counter.Add(n)
	t.h.version.Add(1)
}

func (t *hubTask) SetTotal(n int64) {
	t.counter.SetTotal(n)
	t.h.version.Add(1)
}

func (t *hubTask) Fetched(n int64) {
	t.counter.Fetched(n)
	t.h.version.Add(1)
}

func (t *hubTask) Done(err error) {
	if !t.end() {
		return
	}
	t.h.mu.Lock()
	t.finish = time.Now()
	if err != nil {
		t.err = err.Error()
	}
	t.h.mu.Unlock()
	t.h.version.Add(1)
}

// Reset forgets every task and log line (a new sync starts).
func (h *Hub) Reset() {
	h.mu.Lock()
	h.tasks, h.log, h.dropped = nil, nil, 0
	h.mu.Unlock()
	h.version.Add(1)
}

// Version changes whenever anything State returns changes; a reader polls
// it to skip unchanged states cheaply.
func (h *Hub) Version() uint64 { return h.version.Load() }

// State returns every task (in the order they started) and the captured
// log lines (oldest first), and how many older lines were dropped.
func (h *Hub) State() (tasks []TaskState, log []LogLine, dropped int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	tasks = make([]TaskState, 0, len(h.tasks))
	for _, t := range h.tasks {
		tasks = append(tasks, t.state(now))
	}
	return tasks, slices.Clone(h.log), h.dropped
}

// state is the task's current state; the caller holds h.mu.
func (t *hubTask) state(now time.Time) TaskState {
	done, total := t.done.Load(), t.total.Load()
	end := now
	unit := string(t.unit)
	if t.unit == Bytes {
		unit = "bytes"
	}
	st := TaskState{Name: t.name, Unit: unit, Done: done, Total: total, Percent: percent(done, total), Fetched: t.fetched.Load(), State: "running"}
	if !t.finish.IsZero() {
		end, st.State = t.finish, "done"
		if t.err != "" {
			st.State, st.Error = "failed", t.err
		}
	}
	el := end.Sub(t.start)
	st.Elapsed = el.Seconds()
	st.Rate = rate(st.Fetched, el)
	if r := rate(done, el); st.State == "running" && total > done && r > 0 {
		st.ETA = float64(total-done) / r
	}
	return st
}

func (h *Hub) addLog(l LogLine) {
	h.mu.Lock()
	if len(h.log) >= maxLogLines {
		h.log = slices.Delete(h.log, 0, len(h.log)-maxLogLines+1)
		h.dropped++
	}
	h.log = append(h.log, l)
	h.mu.Unlock()
	h.version.Add(1)
}

// LogHandler returns a slog handler that records every line at Info or
// above in the hub and passes it on to next.
func (h *Hub) LogHandler(next slog.Handler) slog.Handler {
	return &hubHandler{hub: h, next: next}
}

type hubHandler struct {
	hub    *Hub
	next   slog.Handler
	prefix string // rendered WithAttrs attributes
	group  string
}

func (hh *hubHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || hh.next.Enabled(ctx, l)
}

func (hh *hubHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		var b strings.Builder
		b.WriteString(hh.prefix)
		r.Attrs(func(a slog.Attr) bool {
			writeAttr(&b, hh.group, a)
			return true
		})
		hh.hub.addLog(LogLine{Time: r.Time.UTC(), Level: r.Level.String(), Message: r.Message, Attrs: strings.TrimSpace(b.String())})
	}
	if hh.next.Enabled(ctx, r.Level) {
		return hh.next.Handle(ctx, r)
	}
	return nil
}

func (hh *hubHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(hh.prefix)
	for _, a := range as {
		writeAttr(&b, hh.group, a)
	}
	return &hubHandler{hub: hh.hub, next: hh.next.WithAttrs(as), prefix: b.String(), group: hh.group}
}

func (hh *hubHandler) WithGroup(name string) slog.Handler {
	g := name
	if hh.group != "" {
		g = hh.group + "." + name
	}
	return &hubHandler{hub: hh.hub, next: hh.next.WithGroup(name), prefix: hh.prefix, group: g}
}

func writeAttr(b *strings.Builder, group string, a slog.Attr) {
	if a.Equal(slog.Attr{}) {
		return
	}
	b.WriteByte(' ')
	if group != "" {
		b.WriteString(group + ".")
	}
	b.WriteString(a.Key)
	b.WriteByte('=')
	v := a.Value.Resolve().String()
	if strings.ContainsAny(v, " \t\"=") {
		v = `"` + strings.ReplaceAll(v, `"`, `\"`) + `"`
	}
	b.WriteString(v)
}

// Tee returns a Reporter that reports every task to all of rs.
func Tee(rs ...Reporter) Reporter { return tee(rs) }

type tee []Reporter

func (t tee) Task(name string, unit Unit, total int64) Task {
	ts := make(teeTask, len(t))
	for i, r := range t {
		ts[i] = r.Task(name, unit, total)
	}
	return ts
}

func (ts teeTask) Fetched(n int64) {
	for _, t := range ts {
		t.Fetched(n)
	}
}

type teeTask []Task

func (ts teeTask) Add(n int64) {
	for _, t := range ts {
		t.Add(n)
	}
}

func (ts teeTask) SetTotal(n int64) {
	for _, t := range ts {
		t.SetTotal(n)
	}
}

func (ts teeTask) Done(err error) {
	for _, t := range ts {
		t.Done(err)
	}
}
