package progress

import (
	"errors"
	"log/slog"
	"strings"
	"testing"
)

func TestHub(t *testing.T) {
	h := NewHub()
	v0 := h.Version()
	a := Tee(Discard(), h).Task("apt/debian pool", Bytes, 100)
	b := h.Task("file/images", Items("files"), 0)
	a.Add(40)
	b.Add(7)
	if h.Version() == v0 {
		t.Error("Version did not change on progress")
	}
	tasks, _, _ := h.State()
	if len(tasks) != 2 || tasks[0].Done != 40 || tasks[0].Percent != 40 || tasks[0].State != "running" || tasks[1].Percent != -1 {
		t.Fatalf("tasks %+v", tasks)
	}
	if tasks[0].Unit != "bytes" || tasks[1].Unit != "files" || tasks[0].Rate != 0 || tasks[1].Rate != 0 {
		t.Errorf("units or rates wrong (nothing was downloaded): %+v", tasks)
	}
	a.Fetched(25)
	if tasks, _, _ := h.State(); tasks[0].Fetched != 25 || tasks[0].Rate <= 0 {
		t.Errorf("a rate comes from bytes downloaded: %+v", tasks[0])
	}
	a.Done(nil)
	b.Done(errors.New("upstream died"))
	tasks, _, _ = h.State()
	if tasks[0].State != "done" || tasks[1].State != "failed" || tasks[1].Error != "upstream died" || tasks[0].ETA != 0 {
		t.Errorf("after Done: %+v", tasks)
	}

	var out strings.Builder
	log := slog.New(h.LogHandler(slog.NewTextHandler(&out, nil))).With("source", "apt/debian")
	log.Info("source synced", "files", 3, "note", "two words")
	log.Debug("not kept")
	_, lines, _ := h.State()
	if len(lines) != 1 || lines[0].Message != "source synced" || lines[0].Attrs != `source=apt/debian files=3 note="two words"` {
		t.Errorf("log lines %+v", lines)
	}
	if !strings.Contains(out.String(), "source synced") {
		t.Errorf("the next handler did not get the line: %q", out.String())
	}
	for i := 0; i < maxLogLines+10; i++ {
		log.Info("line")
	}
	if _, lines, dropped := h.State(); len(lines) != maxLogLines || dropped != 11 {
		t.Errorf("kept %d lines, dropped %d; want %d and 11", len(lines), dropped, maxLogLines)
	}
	h.Reset()
	if tasks, lines, _ := h.State(); len(tasks)+len(lines) != 0 {
		t.Errorf("Reset left %d tasks, %d lines", len(tasks), len(lines))
	}
}
