package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mirrord/mirrord/internal/bytesize"
	"github.com/mirrord/mirrord/internal/progress"
)

// SyncLister is optionally implemented by Syncs: the newest sync, for the
// overview.
type SyncLister interface {
	Latest() (id int, ok bool)
}

// SyncWatcher is optionally implemented by Syncs: a stream of a sync's
// status (what Status returns), each change, closed after the final one or
// when ctx ends. It backs GET /api/v1/syncs/{N}/events (Server-Sent
// Events) and the live sync page.
type SyncWatcher interface {
	Watch(ctx context.Context, id int) (<-chan any, bool)
}

// syncStatus is the JSON shape of a sync's status (syncer.Status), read
// back through JSON so the server depends on the API, not the syncer.
type syncStatus struct {
	ID       int                  `json:"id"`
	Sources  []string             `json:"sources"`
	State    string               `json:"state"`
	Started  time.Time            `json:"started"`
	Finished time.Time            `json:"finished"`
	Snapshot string               `json:"snapshot"`
	Error    string               `json:"error"`
	Tasks    []progress.TaskState `json:"tasks"`
	Log      []progress.LogLine   `json:"log"`
	Dropped  int                  `json:"log_dropped"`
}

type syncView struct {
	page
	ID                                        int
	Sources                                   []string
	State, Started, Finished, Snapshot, Error string
	Tasks                                     []taskView
	Log                                       []logView
	Dropped                                   int
	CanSync                                   bool
}

type taskView struct {
	Name, Done, Total, Rate, Time, State, Error string
	Width                                       float64
}

type logView struct{ Time, Level, Message, Attrs string }

// amount renders n in the task's unit: bytes as bytes, items as counts.
func amount(t progress.TaskState, n float64) string {
	if t.Unit == "bytes" {
		return bytesize.Format(int64(n))
	}
	return strconv.FormatInt(int64(n), 10) + " " + t.Unit
}

func fmtSeconds(s float64) string {
	if s <= 0 {
		return ""
	}
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}

func (s *Server) syncView(id int) (*syncView, error) {
	if s.opt.Syncs == nil {
		return nil, errorf(http.StatusNotImplemented, "%v", errNoSyncs)
	}
	raw, ok := s.opt.Syncs.Status(id)
	if !ok {
		return nil, errorf(http.StatusNotFound, "sync %d: not found (this server remembers the last 100 syncs since it started)", id)
	}
	var st syncStatus
	b, err := json.Marshal(raw)
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		return nil, fmt.Errorf("sync %d: reading its status: %w", id, err)
	}
	v := &syncView{page: s.page("Sync #" + strconv.Itoa(id)), ID: st.ID, Sources: st.Sources, State: st.State,
		Started: fmtTime(st.Started), Finished: fmtTime(st.Finished), Snapshot: st.Snapshot, Error: st.Error, Dropped: st.Dropped, CanSync: true}
	v.SyncID = st.ID
	for _, t := range st.Tasks {
		tv := taskView{Name: t.Name, Done: amount(t, float64(t.Done)), Total: "?", State: t.State, Error: t.Error}
		if t.Total > 0 {
			tv.Total = amount(t, float64(t.Total))
		}
		if t.Rate > 0 {
			tv.Rate = bytesize.FormatFloat(t.Rate) + "/s"
		}
		tv.Time = fmtSeconds(t.Elapsed)
		if t.State == "running" {
			tv.Time = fmtSeconds(t.ETA)
		}
		tv.Width = t.Percent
		if t.Percent < 0 {
			tv.Width = 0
			if t.State != "running" {
				tv.Width = 100
			}
		}
		v.Tasks = append(v.Tasks, tv)
	}
	for _, l := range st.Log {
		v.Log = append(v.Log, logView{Time: l.Time.Format("15:04:05"), Level: l.Level, Message: l.Message, Attrs: l.Attrs})
	}
	return v, nil
}

// uiSync renders /ui/syncs/{N}.
func (s *Server) uiSync(w http.ResponseWriter, r *http.Request, n string) {
	id, err := strconv.Atoi(n)
	if err != nil {
		s.uiError(w, r, errorf(http.StatusBadRequest, "sync id %q: not a number", n))
		return
	}
	v, err := s.syncView(id)
	if err != nil {
		s.uiError(w, r, err)
		return
	}
	s.render(w, r, "sync", v, hdrNoCache)
}

// serveSyncEvents answers GET /api/v1/syncs/{N}/events: Server-Sent
// Events, "status" with the sync's JSON status on every change, then
// "end" once it finished.
func (s *Server) serveSyncEvents(w http.ResponseWriter, r *http.Request, n string) {
	id, err := strconv.Atoi(n)
	if err != nil {
		s.writeError(w, r, http.StatusBadRequest, fmt.Sprintf("sync id %q: not a number", n))
		return
	}
	sw, ok := s.opt.Syncs.(SyncWatcher)
	if !ok {
		s.writeError(w, r, http.StatusNotImplemented, errNoSyncs.Error())
		return
	}
	ch, ok := sw.Watch(r.Context(), id)
	if !ok {
		s.writeError(w, r, http.StatusNotFound, fmt.Sprintf("sync %d: not found", id))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	for st := range ch {
		b, err := json.Marshal(st)
		if err != nil {
			return
		}
		if _, err := fmt.Fprintf(w, "event: status\ndata: %s\n\n", b); err != nil {
			return
		}
		rc.Flush()
	}
	if r.Context().Err() == nil {
		fmt.Fprint(w, "event: end\ndata: {}\n\n")
		rc.Flush()
	}
}
