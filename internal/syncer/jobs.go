package syncer

import (
	"context"
	"errors"
	"sync"
	"time"
)

// ErrRunning is returned by Jobs.Start while a sync runs.
var ErrRunning = errors.New("a sync is already running")

// Status is a sync job's state, as the API shows it.
type Status struct {
	ID       int       `json:"id"`
	Sources  []string  `json:"sources,omitempty"`
	State    string    `json:"state"` // running, succeeded, failed
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	Snapshot string    `json:"snapshot,omitempty"`
	Error    string    `json:"error,omitempty"`
}

// Jobs runs syncs in the background, one at a time, and remembers the last
// 100. Safe for concurrent use.
type Jobs struct {
	run RunFunc
	// base is the lifetime of jobs (cancelled on shutdown).
	base context.Context

	mu      sync.Mutex
	next    int
	running bool
	jobs    map[int]*Status
}

// NewJobs returns a job runner; run does one sync and returns the new ID.
// run may be nil when every job is started with StartWith.
func NewJobs(base context.Context, run RunFunc) *Jobs {
	return &Jobs{run: run, base: base, next: 1, jobs: map[int]*Status{}}
}

// RunFunc does one sync of sources and returns the snapshot's ID.
type RunFunc func(ctx context.Context, sources []string) (string, error)

// Start begins a sync in the background.
func (j *Jobs) Start(ctx context.Context, sources []string) (int, error) {
	return j.StartWith(ctx, sources, j.run)
}

// StartWith is Start with this job's own run function (a syncer built
// from the config as it is now).
func (j *Jobs) StartWith(_ context.Context, sources []string, run RunFunc) (int, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.running {
		return 0, ErrRunning
	}
	id := j.next
	j.next++
	st := &Status{ID: id, Sources: sources, State: "running", Started: time.Now().UTC()}
	j.jobs[id] = st
	delete(j.jobs, id-100)
	j.running = true
	go j.do(st, run)
	return id, nil
}

func (j *Jobs) do(st *Status, run RunFunc) {
	snap, err := run(j.base, st.Sources)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.running = false
	st.Finished = time.Now().UTC()
	if err != nil {
		st.State, st.Error = "failed", err.Error()
		return
	}
	st.State, st.Snapshot = "succeeded", snap
}

// Status returns a copy of job id's state.
func (j *Jobs) Status(id int) (any, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	st, ok := j.jobs[id]
	if !ok {
		return nil, false
	}
	c := *st
	return c, true
}

// Running reports whether a job runs now.
func (j *Jobs) Running() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.running
}
