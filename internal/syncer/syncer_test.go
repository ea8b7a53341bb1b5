package syncer_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/progress"
	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/source"
	"github.com/mirrord/mirrord/internal/store"
	"github.com/mirrord/mirrord/internal/store/fs"
	"github.com/mirrord/mirrord/internal/syncer"
)

// memSource stores fixed content; it can be told to fail.
type memSource struct {
	name  string
	files map[string]string
	err   error
	runs  int
}

func (m *memSource) Kind() string { return "file" }
func (m *memSource) Name() string { return m.name }
func (m *memSource) Sync(ctx context.Context, env *source.Env) (*source.Result, error) {
	m.runs++
	if m.err != nil {
		return nil, m.err
	}
	var es []snapshot.Entry
	for p, body := range m.files {
		in, err := env.Blobs.Put(ctx, strings.NewReader(body), store.Expect{})
		if err != nil {
			return nil, err
		}
		es = append(es, snapshot.Entry{Path: p, Digest: in.Digest, Size: in.Size})
	}
	return &source.Result{Entries: es}, nil
}

func newSyncer(t *testing.T, srcs ...source.Source) *syncer.Syncer {
	t.Helper()
	st, err := fs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &syncer.Syncer{
		Catalog: snapshot.New(st), Progress: progress.Discard(),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), StateDir: t.TempDir(),
		Sources: srcs, Concurrency: 2,
	}
}

func TestAllOrNothing(t *testing.T) {
	ctx := context.Background()
	good := &memSource{name: "good", files: map[string]string{"a": "1"}}
	bad := &memSource{name: "bad", err: errors.New("upstream died")}
	s := newSyncer(t, good, bad)
	_, err := s.Run(ctx, nil)
	if err == nil || !strings.Contains(err.Error(), "sync file/bad: upstream died") {
		t.Fatalf("Run = %v; want the failing source named", err)
	}
	if ids, _ := s.Catalog.IDs(ctx); len(ids) != 0 {
		t.Errorf("a failed sync wrote snapshots %v", ids)
	}
}

func TestUnnamedSourcesCarryOver(t *testing.T) {
	ctx := context.Background()
	a := &memSource{name: "a", files: map[string]string{"x": "1"}}
	b := &memSource{name: "b", files: map[string]string{"y": "1"}}
	s := newSyncer(t, a, b)
	first, err := s.Run(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.files = map[string]string{"y": "2"}
	a.err = errors.New("must not run")
	second, err := s.Run(ctx, []string{"file/b"})
	if err != nil {
		t.Fatal(err)
	}
	sa1, _ := first.Source("file/a")
	sa2, _ := second.Source("file/a")
	sb1, _ := first.Source("file/b")
	sb2, _ := second.Source("file/b")
	if sa1.Tree != sa2.Tree || sb1.Tree == sb2.Tree || a.runs != 1 || b.runs != 2 {
		t.Errorf("carry-over wrong: a %s/%s b %s/%s runs a=%d b=%d", sa1.Tree, sa2.Tree, sb1.Tree, sb2.Tree, a.runs, b.runs)
	}
	if _, err := s.Run(ctx, []string{"file/nope"}); !errors.Is(err, syncer.ErrUnknownSource) {
		t.Errorf("unknown source: %v", err)
	}
}

func TestBusyWhileLocked(t *testing.T) {
	ctx := context.Background()
	s := newSyncer(t, &memSource{name: "a", files: map[string]string{"x": "1"}})
	unlock, err := s.Catalog.Store().TryLock(ctx, snapshot.SyncLock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Run(ctx, nil); !errors.Is(err, syncer.ErrBusy) {
		t.Errorf("Run while locked: %v, want ErrBusy", err)
	}
	unlock()
	if _, err := s.Run(ctx, nil); err != nil {
		t.Errorf("Run after unlock: %v", err)
	}
}

func TestJobs(t *testing.T) {
	release := make(chan struct{})
	j := syncer.NewJobs(context.Background(), nil, func(ctx context.Context, _ []string) (string, error) {
		<-release
		return "20261123T000000Z", nil
	})
	id, err := j.Start(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Start(context.Background(), nil); !errors.Is(err, syncer.ErrRunning) {
		t.Errorf("second Start: %v, want ErrRunning", err)
	}
	close(release)
	for j.Running() {
		time.Sleep(time.Millisecond)
	}
	st, ok := j.Status(id)
	if !ok || st.(syncer.Status).State != "succeeded" || st.(syncer.Status).Snapshot != "20261123T000000Z" {
		t.Errorf("status %+v", st)
	}
}

func TestJobsWatch(t *testing.T) {
	hub := progress.NewHub()
	step := make(chan struct{})
	j := syncer.NewJobs(context.Background(), hub, func(ctx context.Context, _ []string) (string, error) {
		task := hub.Task("file/images", 10)
		for i := 0; i < 3; i++ {
			<-step
			task.Add(2)
		}
		task.Done(nil)
		return "20261123T000000Z", nil
	})
	id, err := j.Start(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if last, ok := j.Latest(); !ok || last != id {
		t.Errorf("Latest = %d, %v", last, ok)
	}
	ch, ok := j.Watch(context.Background(), id)
	if !ok {
		t.Fatal("Watch of a running job: not found")
	}
	var seen []int64
	var final syncer.Status
	for v := range ch {
		st := v.(syncer.Status)
		final = st
		if len(st.Tasks) == 1 && (len(seen) == 0 || seen[len(seen)-1] != st.Tasks[0].Done) {
			seen = append(seen, st.Tasks[0].Done)
		}
		if st.State == "running" && len(seen) > 0 && seen[len(seen)-1] < 6 {
			step <- struct{}{}
		}
	}
	if final.State != "succeeded" || final.Snapshot != "20261123T000000Z" || final.Tasks[0].State != "done" {
		t.Errorf("final %+v", final)
	}
	if len(seen) < 2 || seen[len(seen)-1] != 6 {
		t.Errorf("progress seen %v; want it to advance to 6", seen)
	}
	if _, ok := j.Watch(context.Background(), 99); ok {
		t.Error("Watch of an unknown job succeeded")
	}
}
