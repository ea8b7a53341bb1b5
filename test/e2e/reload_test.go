package e2e

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUPReload: SIGHUP re-reads the config: a new token takes effect, a
// changed listen is reported as needing a restart, and a broken file is
// refused with the server still serving the old config.
func TestSIGHUPReload(t *testing.T) {
	up := newUpstream(t)
	a := []byte("a")
	up.set("a", a)
	e := newEnv(t)
	tokenFile := filepath.Join(e.dir, "token")
	os.WriteFile(tokenFile, []byte("old\n"), 0o600)
	e.writeConfig(fileConfig(up.URL, fileSpec{"a", a}))
	id := e.sync()
	addr := freePort(t)
	cmd := exec.Command(mirrordBin, "--config", e.config, "serve", "--listen", addr)
	se := &lockedBuffer{}
	cmd.Stderr = se
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("serve stderr:\n%s", se.String())
		}
	})
	base := "http://" + addr
	waitFor(t, "serve to answer", 30*time.Second, func() bool {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	promote := func(token string) int {
		req, _ := http.NewRequest("POST", base+"/api/v1/channels/prod/promote", strings.NewReader(`{"snapshot":"`+id+`"}`))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := promote("old"); code != 200 {
		t.Fatalf("promote with the starting token: %d", code)
	}
	hup := func(wantLog string) {
		t.Helper()
		n := strings.Count(se.String(), wantLog)
		cmd.Process.Signal(syscall.SIGHUP)
		waitFor(t, "the reload to be logged ("+wantLog+")", 10*time.Second, func() bool { return strings.Count(se.String(), wantLog) > n })
	}

	// A new token, and a listen change that needs a restart.
	os.WriteFile(tokenFile, []byte("new\n"), 0o600)
	e.writeConfig("listen: 127.0.0.1:1\n" + fileConfig(up.URL, fileSpec{"a", a}))
	hup("config reloaded")
	if code := promote("old"); code != 401 {
		t.Errorf("old token after reload: %d, want 401", code)
	}
	if code := promote("new"); code != 200 {
		t.Errorf("new token after reload: %d, want 200", code)
	}
	// --listen still wins over the file, so only a real change is reported.
	if strings.Contains(se.String(), "keys=[listen]") {
		t.Errorf("listen reported as changed although --listen overrides it:\n%s", se.String())
	}

	// A broken file is refused; the running config stays.
	e.writeConfig("data_dir: data\nfile: [{name: images}]\nbogus_key: 1\n")
	hup("config reload failed")
	if !strings.Contains(se.String(), "bogus_key") {
		t.Errorf("reload error does not name the bad key:\n%s", se.String())
	}
	if code := promote("new"); code != 200 {
		t.Errorf("token after a failed reload: %d, want the running config's 200", code)
	}
	resp, body := get(t, base+"/snapshots/"+id+"/file/images/a", nil)
	if resp.StatusCode != 200 || !bytes.Equal(body, a) {
		t.Errorf("serving after a failed reload: %d", resp.StatusCode)
	}
}
