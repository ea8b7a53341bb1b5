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
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
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

// TestUnchangedWritesNoSnapshot: a sync whose sources all produce what the
// latest snapshot has returns that snapshot and writes none; a change, or
// a source added to the config, writes a new one.
func TestUnchangedWritesNoSnapshot(t *testing.T) {
	ctx := context.Background()
	a := &memSource{name: "a", files: map[string]string{"x": "1"}}
	s := newSyncer(t, a)
	first, err := s.Run(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Run(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID {
		t.Errorf("unchanged sync returned %s, want the latest %s", again.ID, first.ID)
	}
	if ids, _ := s.Catalog.IDs(ctx); len(ids) != 1 {
		t.Errorf("unchanged sync grew the snapshot list: %v", ids)
	}
	ls, err := s.Catalog.LastSync(ctx)
	if err != nil || !ls.Unchanged || ls.Snapshot != first.ID {
		t.Errorf("LastSync = %+v, %v; want the unchanged sync of %s noted", ls, err, first.ID)
	}
	s.Sources = append(s.Sources, &memSource{name: "b", files: map[string]string{"y": "1"}})
	added, err := s.Run(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	a.files = map[string]string{"x": "2"}
	changed, err := s.Run(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ids, _ := s.Catalog.IDs(ctx); len(ids) != 3 || added.ID == first.ID || changed.ID == added.ID {
		t.Errorf("snapshots %v (added %s, changed %s); want a new one for the added source and for the change", ids, added.ID, changed.ID)
	}
}

// TestGC: gc refuses to run beside a sync and sweeps what no snapshot
// references.
func TestGC(t *testing.T) {
	ctx := context.Background()
	s := newSyncer(t, &memSource{name: "c", files: map[string]string{"x": "1"}})
	if _, err := s.Run(ctx, nil); err != nil {
		t.Fatal(err)
	}
	orphan, err := s.Catalog.Store().Blobs().Put(ctx, strings.NewReader("nobody's"), store.Expect{})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := s.Catalog.Store().TryLock(ctx, snapshot.SyncLock)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := syncer.GC(ctx, s.Catalog, 0, false); !errors.Is(err, syncer.ErrBusy) {
		t.Errorf("gc beside a sync: %v, want ErrBusy", err)
	}
	unlock()
	st, err := syncer.GC(ctx, s.Catalog, 0, false)
	if err != nil {
		t.Fatal(err)
	}
	if st.Deleted != 1 {
		t.Errorf("gc deleted %d blobs, want the 1 orphan", st.Deleted)
	}
	if _, err := s.Catalog.Store().Blobs().Stat(ctx, orphan.Digest); !store.IsNotExist(err) {
		t.Errorf("orphan still there: %v", err)
	}
}

func TestJobsWatch(t *testing.T) {
	hub := progress.NewHub()
	step := make(chan struct{})
	j := syncer.NewJobs(context.Background(), hub, func(ctx context.Context, _ []string) (string, error) {
		task := hub.Task("file/images", progress.Bytes, 10)
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
