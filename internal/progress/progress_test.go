package progress

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mirrord/mirrord/internal/bytesize"
)

// syncBuffer is a bytes.Buffer safe to read while reporters write.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitFor polls until out() contains want.
func waitFor(t *testing.T, out func() string, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("output never contained %q:\n%s", want, out())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func textLogger(w *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, nil))
}

func TestLogLines(t *testing.T) {
	var out syncBuffer
	r := newLogReporter(textLogger(&out), 20*time.Millisecond)
	task := r.Task("debian/bookworm", Bytes, 1000)
	task.Add(250)
	task.Fetched(250)
	waitFor(t, out.String, `msg="task progress" task=debian/bookworm done="250 B/1000 B" percent=25 rate=`)
	task.SetTotal(2000)
	task.Add(750)
	task.Done(nil)
	task.Done(errors.New("ignored: already done"))
	got := out.String()
	for _, want := range []string{
		`level=INFO msg="task started" task=debian/bookworm total="1000 B"`,
		`msg="task done" task=debian/bookworm done="1000 B/2.0 KiB" percent=50 elapsed=`,
		`downloaded="250 B" rate=`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing %q in:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "task done"); n != 1 {
		t.Errorf("%d done lines, want 1", n)
	}
	if strings.Contains(got, "ignored") {
		t.Error("Done after Done was not ignored")
	}
}

func TestLogFailure(t *testing.T) {
	var out syncBuffer
	r := newLogReporter(textLogger(&out), time.Hour)
	task := r.Task("epel", Items("packages"), 0)
	task.Add(10)
	task.Done(errors.New("upstream returned 404"))
	got := out.String()
	if !strings.Contains(got, `level=INFO msg="task started" task=epel`+"\n") {
		t.Errorf("start line with unknown total wrong:\n%s", got)
	}
	if !strings.Contains(got, `level=WARN msg="task failed" task=epel done="10 packages" elapsed=`) || strings.Contains(got, `err="upstream returned 404"`) {
		t.Errorf("failure line wrong:\n%s", got)
	}
}

func TestNewWithoutTTY(t *testing.T) {
	var out syncBuffer
	r := New(&out, nil) // a buffer is no terminal: log lines to it
	r.Task("alpine", Bytes, 10).Done(nil)
	if got := out.String(); !strings.Contains(got, `msg="task done" task=alpine`) {
		t.Errorf("no log line written to w:\n%s", got)
	}

	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var logged syncBuffer
	if _, ok := New(f, textLogger(&logged)).(*logReporter); !ok {
		t.Error("a regular file should get log lines, not bars")
	}
}

func TestConcurrentAdd(t *testing.T) {
	var logOut, barOut syncBuffer
	reporters := map[string]Reporter{
		"log":  newLogReporter(textLogger(&logOut), time.Millisecond),
		"bars": newBars(&barOut, func() int { return 80 }, time.Millisecond),
	}
	for name, r := range reporters {
		task := r.Task("concurrent", Bytes, 0)
		var wg sync.WaitGroup
		for g := range 50 {
			wg.Go(func() {
				for range 1000 {
					task.Add(1)
				}
				task.SetTotal(int64(50_000 + g%2))
			})
		}
		// Other tasks start and end meanwhile.
		for range 20 {
			wg.Go(func() { r.Task("side", Bytes, 1).Done(nil) })
		}
		wg.Wait()
		task.SetTotal(50_000)
		task.Done(nil)
		if c := task.(interface{ doneCount() int64 }).doneCount(); c != 50_000 {
			t.Errorf("%s: done = %d, want 50000", name, c)
		}
	}
	if !strings.Contains(logOut.String(), `msg="task done" task=concurrent done="48.8 KiB/48.8 KiB" percent=100`) {
		t.Errorf("log: final line missing:\n%s", logOut.String())
	}
	if !strings.Contains(barOut.String(), "[done] concurrent  48.8 KiB/48.8 KiB in") {
		t.Errorf("bars: final line missing:\n%q", barOut.String())
	}
}

func (c *counter) doneCount() int64 { return c.done.Load() }

func TestBars(t *testing.T) {
	var out syncBuffer
	b := newBars(&out, func() int { return 100 }, 10*time.Millisecond)
	dl := b.Task("debian-security main amd64", Bytes, 1<<20)
	other := b.Task("a-task-with-a-very-long-name-that-cannot-fit-on-one-terminal-line", Items("indices"), 0)
	dl.Add(512 << 10)
	other.Add(3)
	waitFor(t, out.String, "512.0 KiB/1.0 MiB")
	waitFor(t, out.String, "\x1b[2A\r\x1b[J") // second redraw moves up over both bars
	got := out.String()
	if !strings.Contains(got, "debian-security main amd64 [==========          ]  50.0%") {
		t.Errorf("bar missing:\n%q", got)
	}
	for _, line := range strings.Split(got, "\n") {
		if i := strings.LastIndex(line, "\x1b[2K"); i >= 0 {
			line = line[i+len("\x1b[2K"):]
		}
		if n := utf8.RuneCountInString(line); n > 99 {
			t.Errorf("line of %d runes would wrap: %q", n, line)
		}
	}
	dl.Done(nil)
	other.Done(errors.New("boom"))
	got = out.String()
	if !strings.Contains(got, "[done] debian-security main amd64  512.0 KiB/1.0 MiB in ") {
		t.Errorf("final line missing:\n%q", got)
	}
	if !strings.Contains(got, "[fail] a-task-with-a-very-long-name-that-cannot-fit-on-one-terminal-line after ") || !strings.HasSuffix(got, ", 3 indices\n") || strings.Contains(got, "boom") {
		t.Errorf("failure line missing:\n%q", got)
	}
}

func TestFitNarrow(t *testing.T) {
	figures := "  50.0%  512.0 KiB/1.0 MiB  33.6 MiB/s"
	meter := " [==========          ]"
	for width, want := range map[int]string{
		100: "debian-security main amd64" + meter + figures,
		70:  "debian-security main amd64" + figures, // the meter goes first
		50:  "debian-secu…" + figures,               // then the name shrinks
	} {
		got := fit(width, "debian-security main amd64", meter, figures)
		if got != want {
			t.Errorf("width %d:\n got %q\nwant %q", width, got, want)
		}
		if utf8.RuneCountInString(got) > width {
			t.Errorf("width %d: %d runes", width, utf8.RuneCountInString(got))
		}
	}
}

func TestRedrawRateBounded(t *testing.T) {
	var out syncBuffer
	b := newBars(&out, func() int { return 80 }, barInterval)
	task := b.Task("x", Bytes, 100)
	stop := time.Now().Add(350 * time.Millisecond)
	for time.Now().Before(stop) {
		task.Add(1)
	}
	task.Done(nil)
	if n := strings.Count(out.String(), "\r\x1b[J"); n > 5 { // ≤3 ticks + the Done
		t.Errorf("%d redraws in 350ms, want at most 10/s", n)
	}
}

func TestDiscard(t *testing.T) {
	task := Discard().Task("x", Bytes, 10)
	task.Add(1)
	task.SetTotal(2)
	task.Done(nil)
	New(nil, nil).Task("y", Bytes, 0).Done(nil)
}

func TestHumanBytes(t *testing.T) {
	for n, want := range map[float64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := bytesize.FormatFloat(n); got != want {
			t.Errorf("FormatFloat(%v) = %q, want %q", n, got, want)
		}
	}
}

// TestCountsAndRates: item tasks show counts ("12/40 indices"), and a rate
// appears only for bytes actually downloaded, so blobs already in the
// store never show as an absurd speed.
func TestCountsAndRates(t *testing.T) {
	var out syncBuffer
	r := newLogReporter(textLogger(&out), 10*time.Millisecond)
	ix := r.Task("apt/debian indices", Items("indices"), 40)
	ix.Add(12)
	waitFor(t, out.String, `task="apt/debian indices" done="12/40 indices" percent=30`+"\n")
	pool := r.Task("apt/debian pool", Bytes, 18<<30)
	pool.Add(18 << 30) // all present already: nothing fetched
	pool.Done(nil)
	ix.Done(nil)
	got := out.String()
	if strings.Contains(got, "rate=") || strings.Contains(got, "GiB/s") {
		t.Errorf("a rate was shown though nothing was downloaded:\n%s", got)
	}
	if !strings.Contains(got, `msg="task done" task="apt/debian pool" done="18.0 GiB/18.0 GiB" percent=100`) {
		t.Errorf("byte amounts not shown as bytes:\n%s", got)
	}

	var bars syncBuffer
	b := newBars(&bars, func() int { return 100 }, 5*time.Millisecond)
	bt := b.Task("yum/baseos packages", Items("packages"), 200)
	bt.Add(50)
	waitFor(t, bars.String, " 25.0%  50/200 packages")
	bt.Done(nil)
	if got := bars.String(); strings.Contains(got, "/s") {
		t.Errorf("bar shows a rate with nothing downloaded:\n%q", got)
	}
}
