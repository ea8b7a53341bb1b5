package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/mirrord/mirrord/internal/apt/apttest"
	"github.com/mirrord/mirrord/internal/requiretool"
)

// uiFixture is a served mirrord with an apt source in two generations (gen2
// adds demo-new and upgrades demo-extra) and a slow file source that only
// a sync started from the UI fetches.
type uiFixture struct {
	e             *env
	base          string
	gen1, gen2    string
	gen3          string // the snapshot the UI's sync wrote
	files         *upstream
	browser       context.Context
	shots         string // MIRRORD_UI_SHOTS: where `make ui-shots` wants screenshots
	nfiles, fsize int
}

func uiConfig(up *apttest.Repo, files *upstream, addr string, n, size int) string {
	var b strings.Builder
	fmt.Fprintf(&b, `data_dir: data
public_url: http://%s
auth: {token_file: token}
sync: {concurrency: 2, per_host: 1, retries: 1}
apt:
  - name: demo
    url: %s
    suites: [stable]
    components: [main]
    architectures: [amd64]
    keyring: %s
file:
  - name: images
    files:
`, addr, up.URL, up.Key.Keyring)
	for i := 0; i < n; i++ {
		data := randBytes(int64(100+i), size)
		files.set(fmt.Sprintf("part%d.img", i), data)
		fmt.Fprintf(&b, "      - {url: %s/part%d.img, path: part%d.img, sha256: %s}\n", files.URL, i, i, sha(data))
	}
	return b.String()
}

func newUIFixture(t *testing.T) *uiFixture {
	chromium := requiretool.Path(t, "chromium")
	up := demoUpstream(t)
	f := &uiFixture{files: newUpstream(t), nfiles: 6, fsize: 64 << 10, shots: os.Getenv("MIRRORD_UI_SHOTS")}
	addr := freePort(t)
	e := newAptEnv(t, up, addr, "")
	e.writeConfig(uiConfig(up, f.files, addr, f.nfiles, f.fsize))
	f.e = e
	f.gen1 = e.sync("apt/demo")
	// gen2: demo-new appears, demo-extra goes from 1.0-1 to 1.1-1.
	up.Remove("demo-extra", "1.0-1")
	up.Add(t, apttest.Package{Name: "demo-new", Version: "0.3-2"}, apttest.Package{Name: "demo-extra", Version: "1.1-1"})
	up.Publish(t)
	f.gen2 = e.sync("apt/demo")
	e.must("snapshot", "promote", f.gen1, "production")
	f.base = e.serve(addr)

	alloc, cancel := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(alloc)
	t.Cleanup(cancel2)
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting %s: %v", chromium, err)
	}
	f.browser = ctx
	return f
}

// step runs browser actions with a deadline (derived from the browser's
// context, which must not itself time out).
func (f *uiFixture) step(t *testing.T, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(f.browser, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func eval[T any](t *testing.T, f *uiFixture, js string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(f.browser, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluating %s: %v", js, err)
	}
	return v
}

// waitJS waits until the expression is truthy. It evaluates in a loop
// rather than with Poll, so a navigation meanwhile (a form submitted, a
// page reloaded by the script) does not end the wait.
func (f *uiFixture) waitJS(t *testing.T, what, js string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(f.browser, 5*time.Second)
		var ok bool
		ok, err = chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+js+")"))
		cancel()
		if err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: %s never became true (last error: %v)", what, js, err)
}

// open loads a page with JS and checks the script ran.
func (f *uiFixture) open(t *testing.T, path string) string {
	t.Helper()
	f.step(t, "loading "+path, chromedp.Navigate(f.base+path))
	f.waitJS(t, path+": script ran", `document.documentElement.classList.contains("js")`)
	f.shot(t, path)
	return eval[string](t, f, `document.querySelector("main").innerText`)
}

var shotName = regexp.MustCompile(`[^a-zA-Z0-9]+`)

func (f *uiFixture) shot(t *testing.T, path string) {
	t.Helper()
	if f.shots == "" {
		return
	}
	ctx, cancel := context.WithTimeout(f.browser, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot of %s: %v", path, err)
	}
	path = strings.NewReplacer(f.gen1, "gen1", f.gen2, "gen2").Replace(path)
	if f.gen3 != "" {
		path = strings.ReplaceAll(path, f.gen3, "gen3")
	}
	name := strings.Trim(shotName.ReplaceAllString(path, "-"), "-")
	if name == "" {
		name = "overview"
	}
	os.MkdirAll(f.shots, 0o755)
	if err := os.WriteFile(filepath.Join(f.shots, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (f *uiFixture) channel(t *testing.T, name string) string {
	t.Helper()
	resp, body := get(t, f.base+"/api/v1/channels/"+name, nil)
	var ch struct {
		Snapshot string `json:"snapshot"`
		History  []struct {
			By string `json:"by"`
		} `json:"history"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &ch) != nil {
		t.Fatalf("channel %s: %d %s", name, resp.StatusCode, body)
	}
	return ch.Snapshot
}

// setToken enters a token in the page's token box.
func (f *uiFixture) setToken(t *testing.T, tok string) {
	t.Helper()
	f.step(t, "entering the token",
		chromedp.SetValue(chromedp.CSS("#token"), tok),
		chromedp.Click(chromedp.CSS("#token-form button[type=submit]")))
	f.waitJS(t, "token stored", fmt.Sprintf(`sessionStorage.getItem("mirrord-token") === %q`, tok))
}

func TestWebUI(t *testing.T) {
	f := newUIFixture(t)
	t.Run("NoJS", f.testNoJS)
	t.Run("Pages", f.testPages)
	t.Run("Diff", f.testDiff)
	t.Run("Search", f.testSearch)
	t.Run("PromoteRollback", f.testPromoteRollback)
	t.Run("Sync", f.testSync) // writes a third snapshot
	t.Run("Dark", f.testDark)
}

// Dark mode follows prefers-color-scheme.
func (f *uiFixture) testDark(t *testing.T) {
	bg := `getComputedStyle(document.body).backgroundColor`
	f.open(t, "/ui/diff/"+f.gen1+"/"+f.gen2)
	light := eval[string](t, f, bg)
	f.step(t, "emulating a dark system theme", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
		return err
	}))
	for _, p := range []string{"/?theme=dark", "/ui/diff/" + f.gen1 + "/" + f.gen2 + "?theme=dark", "/ui/channels/production?snapshot=" + f.gen2 + "&theme=dark"} {
		f.open(t, p)
		if dark := eval[string](t, f, bg); dark != "rgb(18, 22, 27)" || dark == light {
			t.Errorf("%s: background %s in dark mode (light: %s)", p, dark, light)
		}
	}
}

// Every page is complete as served HTML, before any script runs.
func (f *uiFixture) testNoJS(t *testing.T) {
	for path, want := range map[string][]string{
		"/":                                 {"production", f.gen1, f.gen2, "apt/demo", "/keys/mirrord.asc", "client config"},
		"/ui/snapshots/" + f.gen2:           {"demo-new", "0.3-2", "demo-extra", "1.1-1", "Signed Release of stable", "Types: deb"},
		"/ui/diff/" + f.gen1 + "/" + f.gen2: {"demo-new", "0.3-2", "demo-extra", "1.0-1", "1.1-1", "upgraded", "added"},
		"/ui/channels/production":           {f.gen1, "History", "cli "},
		"/ui/channels/production?snapshot=" + f.gen2: {"Promote " + f.gen2 + " to production", "demo-new"},
		"/ui/search?q=demo-new":                      {f.gen2, "0.3-2"},
	} {
		resp, body := get(t, f.base+path, nil)
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
			continue
		}
		for _, w := range want {
			if !strings.Contains(string(body), w) {
				t.Errorf("GET %s: served HTML lacks %q", path, w)
			}
		}
		// Nothing may load from elsewhere; the browser enforces it.
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	for _, asset := range []string{"/ui/static/app.css", "/ui/static/app.js"} {
		if resp, body := get(t, f.base+asset, nil); resp.StatusCode != 200 || len(body) < 1000 {
			t.Errorf("GET %s: %d, %d bytes", asset, resp.StatusCode, len(body))
		}
	}
	if resp, _ := get(t, f.base+"/ui/snapshots/20000101T000000Z", nil); resp.StatusCode != 404 {
		t.Errorf("unknown snapshot page: %d, want 404", resp.StatusCode)
	}
	// Links to a time, and the snapshot page's promote form, redirect.
	for path, want := range map[string]string{
		"/ui/snapshots/29991231T000000Z":               "/ui/snapshots/" + f.gen2,
		"/ui/channels?name=staging&snapshot=" + f.gen2: "/ui/channels/staging?snapshot=" + f.gen2 + "#preview",
		"/ui/diff?a=" + f.gen1 + "&b=" + f.gen2:        "/ui/diff/" + f.gen1 + "/" + f.gen2,
	} {
		if resp, _ := get(t, f.base+path, nil); resp.StatusCode/100 != 3 || resp.Header.Get("Location") != want {
			t.Errorf("GET %s: %d to %q, want a redirect to %q", path, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

// Every page loads in the browser with its script, and shows its content.
func (f *uiFixture) testPages(t *testing.T) {
	for path, want := range map[string]string{
		"/":                                 "Channels",
		"/ui/snapshots/" + f.gen1:           "demo-app",
		"/ui/diff/" + f.gen1 + "/" + f.gen2: "demo-new",
		"/ui/channels/production":           f.gen1,
		"/ui/search?q=demo-app":             f.gen2,
	} {
		if text := f.open(t, path); !strings.Contains(text, want) {
			t.Errorf("%s: page lacks %q:\n%s", path, want, text)
		}
	}
	// Pick A and B on the overview and land on their diff.
	f.open(t, "/")
	f.step(t, "picking a diff",
		chromedp.SetValue(chromedp.CSS(`#pick-diff select[name=a]`), f.gen1),
		chromedp.SetValue(chromedp.CSS(`#pick-diff select[name=b]`), f.gen2),
		chromedp.Submit(chromedp.CSS(`#pick-diff`)))
	f.waitJS(t, "diff page", fmt.Sprintf(`location.pathname === "/ui/diff/%s/%s"`, f.gen1, f.gen2))
}

// The diff shows what gen2 added and what it upgraded, with both versions.
func (f *uiFixture) testDiff(t *testing.T) {
	f.open(t, "/ui/diff/"+f.gen1+"/"+f.gen2)
	rows := eval[[]string](t, f, `Array.from(document.querySelectorAll("section[data-source='apt/demo'] table.diff tbody tr")).map(r => r.innerText.replace(/\s+/g, " ").trim())`)
	for _, want := range []string{"added demo-new:amd64 0.3-2", "upgraded demo-extra:amd64 1.0-1 1.1-1"} {
		if !slices.Contains(rows, want) {
			t.Errorf("diff rows %q lack %q", rows, want)
		}
	}
}

// Search finds a package in exactly the snapshots that have it.
func (f *uiFixture) testSearch(t *testing.T) {
	for _, tc := range []struct {
		q    string
		want []string
	}{
		{"demo-new", []string{f.gen2}},
		{"demo-app", []string{f.gen2, f.gen1}},
		{"demo-extra&version=1.0-1", []string{f.gen1}},
		{"no-such-package", nil},
	} {
		f.open(t, "/ui/search?q="+tc.q)
		got := eval[[]string](t, f, `Array.from(new Set(Array.from(document.querySelectorAll("#results a.snap")).map(a => a.textContent)))`)
		if !slices.Equal(got, tc.want) {
			t.Errorf("search %s: snapshots %v, want %v", tc.q, got, tc.want)
		}
	}
	// The API answers the same, from the index.
	resp, body := get(t, f.base+"/api/v1/search?package=demo-extra", nil)
	var ans struct {
		Results []struct {
			Source, Name, Version string
			Snapshots             []string
		}
		IndexedThrough string `json:"indexed_through"`
	}
	if resp.StatusCode != 200 || json.Unmarshal(body, &ans) != nil {
		t.Fatalf("search API: %d %s", resp.StatusCode, body)
	}
	want := fmt.Sprintf("[{apt/demo demo-extra:amd64 1.0-1 [%s]} {apt/demo demo-extra:amd64 1.1-1 [%s]}]", f.gen1, f.gen2)
	if got := fmt.Sprint(ans.Results); got != want || ans.IndexedThrough != f.gen2 {
		t.Errorf("search API: %s through %s, want %s through %s", got, ans.IndexedThrough, want, f.gen2)
	}
	if resp, _ := get(t, f.base+"/api/v1/search", nil); resp.StatusCode != 400 {
		t.Errorf("search without a package: %d, want 400", resp.StatusCode)
	}
}

func (f *uiFixture) clickAndSee(t *testing.T, button, want string) {
	t.Helper()
	f.step(t, "clicking "+button, chromedp.Click(chromedp.CSS(button)))
	f.waitJS(t, "message "+want, fmt.Sprintf(`(document.querySelector("#action-msg").textContent || "").includes(%q)`, want))
}

// Promote and rollback through the UI need the right token; a wrong one
// shows the API's error and moves nothing.
func (f *uiFixture) testPromoteRollback(t *testing.T) {
	f.open(t, "/ui/channels/production?snapshot="+f.gen2)
	f.setToken(t, "wrong")
	f.clickAndSee(t, "#promote", "wrong bearer token")
	if got := f.channel(t, "production"); got != f.gen1 {
		t.Fatalf("a wrong token moved production to %s", got)
	}
	f.shot(t, "/ui/channels/production-wrong-token")
	f.step(t, "re-enabling", chromedp.Evaluate[chromedp.Void](`document.querySelector("#promote").disabled = false`))
	f.setToken(t, "s3cret")
	f.clickAndSee(t, "#promote", "Promoted")
	if got := f.channel(t, "production"); got != f.gen2 {
		t.Fatalf("after promote production is at %s, want %s", got, f.gen2)
	}
	f.waitJS(t, "page reloaded", fmt.Sprintf(`location.search.includes("done=promote") && document.querySelector("#channel-snapshot").textContent === %q`, f.gen2))

	f.setToken(t, "also-wrong")
	f.clickAndSee(t, "#rollback", "wrong bearer token")
	if got := f.channel(t, "production"); got != f.gen2 {
		t.Fatalf("a wrong token rolled production back to %s", got)
	}
	f.step(t, "re-enabling", chromedp.Evaluate[chromedp.Void](`document.querySelector("#rollback").disabled = false`))
	f.setToken(t, "s3cret")
	f.clickAndSee(t, "#rollback", "Rolled back")
	if got := f.channel(t, "production"); got != f.gen1 {
		t.Fatalf("after rollback production is at %s, want %s", got, f.gen1)
	}
	// The API recorded who moved it.
	_, body := get(t, f.base+"/api/v1/channels/production", nil)
	if !strings.Contains(string(body), `"by": "api from 127.0.0.1 on `) && !strings.Contains(string(body), `"by":"api from 127.0.0.1 on `) {
		t.Errorf("moves do not name the API as the actor: %s", body)
	}
}

// A sync started from the UI shows its progress advancing, then its
// snapshot.
func (f *uiFixture) testSync(t *testing.T) {
	f.files.mu.Lock()
	f.files.delay = 20 * time.Millisecond // per 4 KiB: each file takes about 0.3s
	f.files.mu.Unlock()
	f.open(t, "/")
	f.setToken(t, "s3cret")
	f.step(t, "starting a sync", chromedp.Click(chromedp.CSS("#start-sync")))
	f.waitJS(t, "sync page", `location.pathname.startsWith("/ui/syncs/")`)
	f.waitJS(t, "sync page script", `document.documentElement.classList.contains("js")`)
	done := `(document.querySelector("#sync-tasks tr[data-task='file/images'] td.done") || {}).textContent || ""`
	// A policy violation (an inline style or script) would be reported here.
	f.step(t, "watching for CSP violations", chromedp.Evaluate[chromedp.Void](`window.cspViolations = []; document.addEventListener("securitypolicyviolation", e => window.cspViolations.push(e.violatedDirective + " " + e.blockedURI))`))
	var seen []string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		v := eval[string](t, f, done)
		if v != "" && (len(seen) == 0 || seen[len(seen)-1] != v) {
			seen = append(seen, v)
			if len(seen) == 3 {
				f.shot(t, "/ui/syncs/running")
			}
		}
		if eval[bool](t, f, `!!document.querySelector("#sync-snapshot")`) {
			break
		}
		time.Sleep(30 * time.Millisecond)
	}
	id := eval[string](t, f, `(document.querySelector("#sync-snapshot") || {}).textContent || ""`)
	if !idRE.MatchString(id) {
		t.Fatalf("the sync page shows no snapshot ID (got %q); progress seen %v", id, seen)
	}
	f.shot(t, "/ui/syncs/done")
	if v := eval[[]string](t, f, `window.cspViolations`); len(v) > 0 {
		t.Errorf("Content-Security-Policy violations on the sync page: %v", v)
	}
	if v := eval[float64](t, f, `document.querySelector("#sync-tasks tr[data-task='file/images'] progress").value`); v != 100 {
		t.Errorf("finished task's progress bar at %v, want 100", v)
	}
	// Advancing: several distinct amounts were shown before the end.
	if len(seen) < 3 {
		t.Errorf("progress seen %v; want it to advance through several values", seen)
	}
	if resp, body := get(t, f.base+"/api/v1/snapshots/"+id, nil); resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"file"`) {
		t.Errorf("snapshot %s from the UI sync: %d %s", id, resp.StatusCode, body)
	}
	f.gen3 = id
	// The finished sync's page, as served HTML alone.
	syncPath := eval[string](t, f, `location.pathname`)
	if resp, body := get(t, f.base+syncPath, nil); resp.StatusCode != 200 || !strings.Contains(string(body), id) ||
		!strings.Contains(string(body), "file/images") || !strings.Contains(string(body), "source synced") {
		t.Errorf("GET %s without JS: %d, lacks the snapshot, task or log:\n%s", syncPath, resp.StatusCode, body)
	}
	if text := f.open(t, "/ui/snapshots/"+id+"?source=file/images"); !strings.Contains(text, "part0.img") {
		t.Errorf("new snapshot page lacks its files:\n%s", text)
	}
}
