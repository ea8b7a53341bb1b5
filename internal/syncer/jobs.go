package syncer

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/mirrord/mirrord/internal/progress"
)

// ErrRunning is returned by Jobs.Start while a sync runs.
var ErrRunning = errors.New("a sync is already running")

// Status is a sync job's state, as the API shows it. While the job runs,
// Tasks and Log are live (from the job's progress hub); once it ends they
// are its final state.
type Status struct {
	ID       int                  `json:"id"`
	Sources  []string             `json:"sources,omitempty"`
	State    string               `json:"state"` // running, succeeded, failed
	Started  time.Time            `json:"started"`
	Finished time.Time            `json:"finished,omitzero"`
	Snapshot string               `json:"snapshot,omitempty"`
	Error    string               `json:"error,omitempty"`
	Tasks    []progress.TaskState `json:"tasks"`
	Log      []progress.LogLine   `json:"log"`
	Dropped  int                  `json:"log_dropped,omitempty"` // older log lines not kept
}

// Jobs runs syncs in the background, one at a time, and remembers the last
// 100. Safe for concurrent use.
type Jobs struct {
	run RunFunc
	// base is the lifetime of jobs (cancelled on shutdown).
	base context.Context
	hub  *progress.Hub // may be nil

	mu      sync.Mutex
	next    int
	running bool
	jobs    map[int]*job
}

type job struct {
	st   Status
	done chan struct{} // closed when the job ends
}

// NewJobs returns a job runner; run does one sync and returns the new ID.
// run may be nil when every job is started with StartWith. hub, when not
// nil, is the progress hub run's syncer reports to (its Reporter and log
// handler): Jobs resets it when a job starts and shows its state in the
// job's Status.
func NewJobs(base context.Context, hub *progress.Hub, run RunFunc) *Jobs {
	return &Jobs{run: run, base: base, hub: hub, next: 1, jobs: map[int]*job{}}
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
	jb := &job{st: Status{ID: id, Sources: sources, State: "running", Started: time.Now().UTC()}, done: make(chan struct{})}
	j.jobs[id] = jb
	delete(j.jobs, id-100)
	j.running = true
	if j.hub != nil {
		j.hub.Reset()
	}
	go j.do(jb, run)
	return id, nil
}

func (j *Jobs) do(jb *job, run RunFunc) {
	snap, err := run(j.base, jb.st.Sources)
	j.mu.Lock()
	defer j.mu.Unlock()
	defer close(jb.done)
	j.running = false
	st := &jb.st
	st.Finished = time.Now().UTC()
	if j.hub != nil {
		st.Tasks, st.Log, st.Dropped = j.hub.State()
	}
	if err != nil {
		st.State, st.Error = "failed", err.Error()
		return
	}
	st.State, st.Snapshot = "succeeded", snap
}

// Status returns a copy of job id's state (a syncer.Status).
func (j *Jobs) Status(id int) (any, bool) {
	st, ok := j.status(id)
	return st, ok
}

func (j *Jobs) status(id int) (Status, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	jb, ok := j.jobs[id]
	if !ok {
		return Status{}, false
	}
	c := jb.st
	if c.State == "running" && j.hub != nil {
		c.Tasks, c.Log, c.Dropped = j.hub.State()
	}
	if c.Tasks == nil {
		c.Tasks = []progress.TaskState{}
	}
	if c.Log == nil {
		c.Log = []progress.LogLine{}
	}
	return c, true
}

// Latest returns the ID of the newest job, running or not; false when no
// job ran yet.
func (j *Jobs) Latest() (int, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.next - 1, j.next > 1
}

// Running reports whether a job runs now.
func (j *Jobs) Running() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.running
}

// watchEvery is how often Watch looks for progress (byte counts change
// too often to send each change).
const watchEvery = 250 * time.Millisecond

// Watch streams job id's state: the current one at once, then each change
// (at most every 250ms), then the final state, after which the channel is
// closed. It is closed early when ctx ends. It reports false for an
// unknown job.
func (j *Jobs) Watch(ctx context.Context, id int) (<-chan any, bool) {
	j.mu.Lock()
	jb, ok := j.jobs[id]
	j.mu.Unlock()
	if !ok {
		return nil, false
	}
	out := make(chan any)
	go j.watch(ctx, id, jb.done, out)
	return out, true
}

func (j *Jobs) watch(ctx context.Context, id int, done <-chan struct{}, out chan<- any) {
	defer close(out)
	tk := time.NewTicker(watchEvery)
	defer tk.Stop()
	var last uint64
	first := true
	for {
		var ver uint64
		if j.hub != nil {
			ver = j.hub.Version()
		}
		st, ok := j.status(id)
		if !ok {
			return
		}
		if first || ver != last || st.State != "running" {
			select {
			case out <- st:
			case <-ctx.Done():
				return
			}
			first, last = false, ver
		}
		if st.State != "running" {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-done:
		case <-tk.C:
		}
	}
}
