package gitcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// ErrNoGit means the C git binary is not installed. Git sources need it to
// sync (packs, connectivity checks) and to serve (upload-pack).
var ErrNoGit = errors.New("git is not installed (install the git package)")

// gitCmd runs C git with a clean environment: no system or global config,
// no prompts, so the host's settings cannot change what is served.
type gitCmd struct {
	path string
}

// findGit locates the git binary: path when set, else "git" on $PATH.
func findGit(path string) (*gitCmd, error) {
	if path == "" {
		path = "git"
	}
	p, err := exec.LookPath(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNoGit, err)
	}
	return &gitCmd{path: p}, nil
}

// command prepares `git args...` with extra environment variables. The
// process gets its own process group, and cancelling ctx kills the whole
// group (upload-pack runs pack-objects as a child).
func (g *gitCmd) command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, g.path, args...)
	cmd.Env = append([]string{
		"PATH=" + os.Getenv("PATH"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"LC_ALL=C",
	}, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// run runs git to completion and returns its standard output; a failure
// carries git's standard error.
func (g *gitCmd) run(ctx context.Context, stdin io.Reader, env []string, args ...string) ([]byte, error) {
	cmd := g.command(ctx, env, args...)
	var out bytes.Buffer
	errBuf := &tailBuffer{max: 4096}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &out, errBuf
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errBuf.String()))
	}
	return out.Bytes(), nil
}

// tailBuffer keeps the last max bytes written to it (git's stderr, for
// error messages, without unbounded memory).
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }
