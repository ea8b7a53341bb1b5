package apt

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/mirrord/mirrord/internal/store"
)

// sinks stores one stream as several blobs at once, each in its own
// compression (plain, .gz, .xz), without holding the stream in memory.
// Write it like a file, then Close to learn what was stored; Abort on
// failure so nothing half-written is left visible.
type sinks struct {
	suffixes []string
	ws       []io.WriteCloser // compressor per suffix, writing into pipes[i]
	pipes    []*io.PipeWriter
	infos    []store.Info
	errs     []error
	wg       sync.WaitGroup
}

// newSinks starts one store.Put per suffix. expect gives the expected
// digest and size of a suffix's output when known (the plain file whose
// SHA256 the upstream Release lists).
func newSinks(ctx context.Context, blobs store.Blobs, suffixes []string, expect map[string]store.Expect) (*sinks, error) {
	s := &sinks{suffixes: suffixes, infos: make([]store.Info, len(suffixes)), errs: make([]error, len(suffixes))}
	for i, suf := range suffixes {
		pr, pw := io.Pipe()
		s.pipes = append(s.pipes, pw)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.infos[i], s.errs[i] = blobs.Put(ctx, pr, expect[suf])
			if s.errs[i] == nil {
				// A blob the store already has may be accepted without
				// reading it all; the writer still has to get rid of it.
				_, _ = io.Copy(io.Discard, pr)
			}
			pr.CloseWithError(s.errs[i]) // unblocks the writer if Put gave up early
		}()
		// Some compressors write a header right away: the reader above
		// must run first.
		w, err := compressor(pw, suf)
		if err != nil {
			s.Abort(err)
			return nil, err
		}
		s.ws = append(s.ws, w)
	}
	return s, nil
}

// Write feeds p to every output.
func (s *sinks) Write(p []byte) (int, error) {
	for i, w := range s.ws {
		if _, err := w.Write(p); err != nil {
			return 0, fmt.Errorf("writing %s output: %w", describe(s.suffixes[i]), err)
		}
	}
	return len(p), nil
}

// Close finishes every output and returns what was stored, by suffix.
func (s *sinks) Close() (map[string]store.Info, error) {
	for i, w := range s.ws {
		err := w.Close()
		s.pipes[i].CloseWithError(err)
	}
	s.wg.Wait()
	out := map[string]store.Info{}
	for i, suf := range s.suffixes {
		if s.errs[i] != nil {
			return nil, fmt.Errorf("storing %s output: %w", describe(suf), s.errs[i])
		}
		out[suf] = s.infos[i]
	}
	return out, nil
}

// Abort ends every output with err; nothing becomes visible.
func (s *sinks) Abort(err error) {
	for _, p := range s.pipes {
		p.CloseWithError(err)
	}
	s.wg.Wait()
}

func describe(suffix string) string {
	if suffix == "" {
		return "plain"
	}
	return suffix
}
