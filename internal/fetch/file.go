package fetch

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"syscall"
)

// ErrUnsafeLocalFile is wrapped when a file:// upstream names a symbolic
// link, a hard-linked file or anything else that is not a plain file: in
// a tree mirrord reads from disk, those can alias files outside it (the
// signing key, /etc/shadow) and mirrord would serve them.
var ErrUnsafeLocalFile = errors.New("not a plain file")

// FileTransport serves file:///abs/path requests from the local disk
// (for local upstreams) like http.NewFileTransport, but refuses symbolic
// links, files with more than one hard link, and devices, sockets or
// pipes. Missing files answer 404; directories are listed as
// http.FileServer does.
func FileTransport() http.RoundTripper {
	return fileTransport{next: http.NewFileTransport(http.Dir("/"))}
}

type fileTransport struct{ next http.RoundTripper }

func (t fileTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := req.URL.Path
	fi, err := os.Lstat(p)
	if err == nil {
		if err := checkLocal(p, fi); err != nil {
			return nil, err
		}
	}
	return t.next.RoundTrip(req)
}

func checkLocal(p string, fi os.FileInfo) error {
	switch m := fi.Mode(); {
	case m&os.ModeSymlink != 0:
		target, _ := os.Readlink(p)
		return fmt.Errorf("%s is a symbolic link (to %q): %w; mirrord does not follow links in a local upstream, which could point outside it (copy the tree with cp -L, or serve it over HTTP)", p, target, ErrUnsafeLocalFile)
	case m.IsDir():
		return nil
	case !m.IsRegular():
		return fmt.Errorf("%s is a %v, not a file: %w", p, m.Type(), ErrUnsafeLocalFile)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
		return fmt.Errorf("%s has %d hard links: %w; a hard link can alias a file outside the local upstream, so mirrord refuses them (copy the tree without links, e.g. cp -r, or serve it over HTTP)", p, st.Nlink, ErrUnsafeLocalFile)
	}
	return nil
}
