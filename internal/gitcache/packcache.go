package gitcache

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The pack cache keeps the complete upload-pack response to a full clone
// (wants and "done", nothing else) of a pin: a pin's refs and objects never
// change, so the same request always deserves the same answer, and replaying
// it from a file (sendfile) saves pack-objects' counting and compression.
// Files are CacheDir/NAME/packcache/<pin>-<key>, key being the digest of the
// request without the client's agent and session-id; at most maxPacksPerPin
// per pin (one per distinct client capability set). gc drops the files of
// pins no snapshot uses.
const (
	packCacheDir   = "packcache"
	maxPacksPerPin = 4
	packTempPrefix = ".tmp-"
	packTempMaxAge = time.Hour
)

// fullCloneKey returns the cache key of a protocol v0 upload-pack request
// that asks for everything, or false for any other request (haves, shallow,
// deepen, filter, v2).
func fullCloneKey(body []byte) (string, bool) {
	h := sha256.New()
	h.Write([]byte("mirrord pack cache v1\n"))
	done := false
	for len(body) > 0 {
		if len(body) < 4 || done {
			return "", false
		}
		n, err := strconv.ParseUint(string(body[:4]), 16, 16)
		if err != nil || (n > 0 && n < 5) || int(n) > len(body) {
			return "", false
		}
		if n == 0 {
			h.Write([]byte("0000\n"))
			body = body[4:]
			continue
		}
		line := strings.TrimSuffix(string(body[4:n]), "\n")
		body = body[n:]
		switch {
		case strings.HasPrefix(line, "want "):
			line = dropCapabilities(line, "agent=", "session-id=")
		case line == "done":
			done = true
		default:
			return "", false
		}
		h.Write([]byte(line + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil)), done
}

// dropCapabilities removes the space-separated words with these prefixes.
func dropCapabilities(line string, prefixes ...string) string {
	words := strings.Split(line, " ")
	out := words[:0]
	for _, w := range words {
		drop := false
		for _, p := range prefixes {
			drop = drop || strings.HasPrefix(w, p)
		}
		if !drop {
			out = append(out, w)
		}
	}
	return strings.Join(out, " ")
}

// serveCached answers a full clone from the pack cache, or runs upload-pack
// and caches its response when it succeeds.
func (h *Handler) serveCached(w http.ResponseWriter, r *http.Request, t target, key string, body []byte) {
	dir := filepath.Join(h.opt.CacheDir, t.name, packCacheDir)
	path := filepath.Join(dir, t.pin+"-"+key)
	if f, err := os.Open(path); err == nil {
		defer f.Close()
		if st, err := f.Stat(); err == nil {
			w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
			io.Copy(w, f) // sendfile, through the ResponseWriter's ReadFrom
			return
		}
	}
	pw, err := newPackWriter(dir, t.pin, path)
	if err != nil {
		h.log.Debug("not caching git pack", "source", "git/"+t.name, "err", err)
		h.runUploadPack(r.Context(), w, t, body, nil)
		return
	}
	err = h.runUploadPack(r.Context(), w, t, body, pw)
	if err := pw.finish(err == nil); err != nil {
		h.log.Warn("caching git pack failed", "source", "git/"+t.name, "err", err)
	}
}

// packWriter writes one cache file: to a temp file, made visible under its
// final name only when complete and synced. Write never fails (the
// response to the client must not depend on the cache); the first error is
// kept and makes finish discard the file.
type packWriter struct {
	f     *os.File
	final string
	err   error
}

func newPackWriter(dir, pin, final string) (*packWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	have, err := filepath.Glob(filepath.Join(dir, pin+"-*"))
	if err != nil {
		return nil, err
	}
	if len(have) >= maxPacksPerPin {
		return nil, fmt.Errorf("pin %s has %d cached packs already", pin, len(have))
	}
	f, err := os.CreateTemp(dir, packTempPrefix)
	if err != nil {
		return nil, err
	}
	return &packWriter{f: f, final: final}, nil
}

func (p *packWriter) Write(b []byte) (int, error) {
	if p.err == nil {
		_, p.err = p.f.Write(b)
	}
	return len(b), nil
}

// finish publishes the file if ok and every write succeeded, else removes it.
func (p *packWriter) finish(ok bool) error {
	err := p.err
	if err == nil {
		err = p.f.Sync()
	}
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	if ok && err == nil {
		err = os.Rename(p.f.Name(), p.final)
	}
	if !ok || err != nil {
		os.Remove(p.f.Name())
	}
	return err
}

// cleanPackCache removes cached packs of pins not in keep, and temp files
// old enough that no server is still writing them.
func cleanPackCache(dir string, keep map[string]bool) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		pin, _, _ := strings.Cut(name, "-")
		if strings.HasPrefix(name, packTempPrefix) {
			if info, err := e.Info(); err != nil || time.Since(info.ModTime()) < packTempMaxAge {
				continue
			}
		} else if keep[pin] {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
