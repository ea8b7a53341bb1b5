package server

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"

	"github.com/mirrord/mirrord/internal/snapshot"
)

type apiRoute struct {
	pattern []string // "*" matches one segment
	method  string
	write   bool // needs the bearer token
	// h handles the route; params are the "*" segments. It returns the
	// status and body of a success, or an error that writeErr maps to a
	// status.
	h func(s *Server, r *http.Request, params []string) (int, any, error)
}

var apiRoutes = []apiRoute{
	{[]string{"snapshots"}, http.MethodGet, false, (*Server).apiSnapshots},
	{[]string{"snapshots", "*"}, http.MethodGet, false, (*Server).apiSnapshot},
	{[]string{"snapshots", "*"}, http.MethodDelete, true, (*Server).apiDeleteSnapshot},
	{[]string{"snapshots", "*", "diff", "*"}, http.MethodGet, false, (*Server).apiDiff},
	{[]string{"snapshots", "*", "export"}, http.MethodGet, true, (*Server).apiExport},
	{[]string{"channels"}, http.MethodGet, false, (*Server).apiChannels},
	{[]string{"channels", "*"}, http.MethodGet, false, (*Server).apiChannel},
	{[]string{"channels", "*", "promote"}, http.MethodPost, true, (*Server).apiPromote},
	{[]string{"channels", "*", "rollback"}, http.MethodPost, true, (*Server).apiRollback},
	{[]string{"syncs"}, http.MethodPost, true, (*Server).apiStartSync},
	{[]string{"syncs", "*"}, http.MethodGet, false, (*Server).apiSync},
	{[]string{"search"}, http.MethodGet, false, (*Server).apiSearch},
}

func matchRoute(pattern, segs []string) ([]string, bool) {
	if len(pattern) != len(segs) {
		return nil, false
	}
	var params []string
	for i, p := range pattern {
		switch {
		case p == "*":
			params = append(params, segs[i])
		case p != segs[i]:
			return nil, false
		}
	}
	return params, true
}

// serveAPI routes /api/v1/...
func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/")
	if !ok || rest == "" {
		s.writeError(w, r, http.StatusNotFound, "no such API route: "+r.URL.Path+" (see /api/v1/snapshots, /api/v1/channels)")
		return
	}
	segs := strings.Split(rest, "/")
	if len(segs) == 3 && segs[0] == "syncs" && segs[2] == "events" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
		s.serveSyncEvents(w, r, segs[1]) // a stream, not one JSON answer
		return
	}
	var allow []string
	for _, rt := range apiRoutes {
		params, ok := matchRoute(rt.pattern, segs)
		if !ok {
			continue
		}
		if r.Method != rt.method && !(r.Method == http.MethodHead && rt.method == http.MethodGet) {
			allow = append(allow, rt.method)
			if rt.method == http.MethodGet {
				allow = append(allow, http.MethodHead)
			}
			continue
		}
		if rt.write {
			s.serveWrite(w, r, rt, params)
			return
		}
		code, body, err := rt.h(s, r, params)
		if err != nil {
			s.writeErr(w, r, err)
			return
		}
		if st, ok := body.(streamer); ok {
			st.stream(s, w, r)
			return
		}
		writeJSON(w, code, body)
		return
	}
	if allow != nil {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		s.writeError(w, r, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path+"; allowed: "+strings.Join(allow, ", "))
		return
	}
	s.writeError(w, r, http.StatusNotFound, "no such API route: "+r.URL.Path)
}

// serveWrite runs a write route after authorize, and logs every attempt,
// refused or not, with the peer's address.
func (s *Server) serveWrite(w http.ResponseWriter, r *http.Request, rt apiRoute, params []string) {
	code, body, err := http.StatusOK, any(nil), s.authorize(r)
	if err == nil {
		code, body, err = rt.h(s, r, params)
	}
	level, msg := slog.LevelInfo, "api write"
	if err != nil {
		code = statusOf(err)
		level, msg = slog.LevelWarn, "api write refused"
		if code >= 500 {
			msg = "api write failed"
		}
	}
	args := []any{"method", r.Method, "path", r.URL.Path, "peer", r.RemoteAddr, "tls", r.TLS != nil, "status", code}
	if err != nil {
		args = append(args, "err", err.Error())
	}
	s.log.Log(r.Context(), level, msg, args...)
	if err != nil {
		s.writeErr(w, r, err)
		return
	}
	if st, ok := body.(streamer); ok { // a token-guarded stream (bundle export)
		st.stream(s, w, r)
		return
	}
	writeJSON(w, code, body)
}

// authorize checks the bearer token of a write request, and with
// SecureWrites that it came over TLS or from this host.
func (s *Server) authorize(r *http.Request) error {
	if s.opt.SecureWrites && r.TLS == nil && !loopbackPeer(r.RemoteAddr) {
		return errorf(http.StatusForbidden, "write endpoints refuse plain HTTP from %s: this server has tls: configured, so send writes over https:// (a bearer token sent in the clear can be read on the way)", r.RemoteAddr)
	}
	want := s.token.Load()
	if want == nil {
		return errorf(http.StatusForbidden, "write endpoints are disabled: this server has no token; set auth.token_file in the configuration")
	}
	auth := r.Header.Get("Authorization")
	tok, ok := cutPrefixFold(auth, "Bearer ")
	if !ok || tok == "" {
		return errorf(http.StatusUnauthorized, "missing bearer token (Authorization: Bearer <token>)")
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
		return errorf(http.StatusUnauthorized, "wrong bearer token")
	}
	return nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || !strings.EqualFold(s[:len(prefix)], prefix) {
		return s, false
	}
	return s[len(prefix):], true
}

func (s *Server) apiSnapshots(r *http.Request, _ []string) (int, any, error) {
	v, err := s.view(r.Context())
	if err != nil {
		return 0, nil, err
	}
	recs, err := s.records(r.Context(), v.ids)
	if err != nil {
		return 0, nil, err
	}
	out := make([]snapshot.Summary, 0, len(recs))
	for _, rec := range recs {
		out = append(out, snapshot.Summarize(rec, v.channelsOf(rec.ID)))
	}
	return http.StatusOK, out, nil
}

// exactRecord returns the snapshot with exactly this ID (the API does not
// resolve at-or-before).
func (s *Server) exactRecord(r *http.Request, id string) (*snapshot.Record, *view, error) {
	if _, err := snapshot.ParseID(id); err != nil {
		return nil, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	v, err := s.view(r.Context())
	if err != nil {
		return nil, nil, err
	}
	if !v.has(id) {
		// Perhaps just created by another process.
		if ok, err := s.cat.Exists(r.Context(), id); err != nil {
			return nil, nil, err
		} else if !ok {
			return nil, nil, errorf(http.StatusNotFound, "snapshot %s: %v", id, snapshot.ErrNotFound)
		}
	}
	rec, err := s.record(r.Context(), id)
	return rec, v, err
}

func (s *Server) apiSnapshot(r *http.Request, p []string) (int, any, error) {
	rec, v, err := s.exactRecord(r, p[0])
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, snapshot.Detailed(rec, v.channelsOf(rec.ID)), nil
}

func (s *Server) apiDeleteSnapshot(r *http.Request, p []string) (int, any, error) {
	id := p[0]
	if _, err := snapshot.ParseID(id); err != nil {
		return 0, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	if err := s.cat.Delete(r.Context(), id); err != nil {
		return 0, nil, err
	}
	s.recs.Delete(id)
	s.changed(r.Context())
	return http.StatusOK, map[string]string{"deleted": id}, nil
}

func (s *Server) apiDiff(r *http.Request, p []string) (int, any, error) {
	a, _, err := s.exactRecord(r, p[0])
	if err != nil {
		return 0, nil, err
	}
	b, _, err := s.exactRecord(r, p[1])
	if err != nil {
		return 0, nil, err
	}
	d, err := s.cat.Diff(r.Context(), a, b)
	if err != nil {
		return 0, nil, err
	}
	if d == nil {
		d = []snapshot.SourceDiff{}
	}
	return http.StatusOK, d, nil
}

func (s *Server) apiChannels(r *http.Request, _ []string) (int, any, error) {
	v, err := s.view(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := make([]snapshot.ChannelSummary, 0, len(v.chanList))
	for _, ch := range v.chanList {
		out = append(out, ch.Summarize())
	}
	return http.StatusOK, out, nil
}

func (s *Server) apiChannel(r *http.Request, p []string) (int, any, error) {
	if err := snapshot.ValidChannel(p[0]); err != nil {
		return 0, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	ch, err := s.cat.Channel(r.Context(), p[0])
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, ch.Detailed(), nil
}

const maxBody = 1 << 20

// decodeBody decodes r's JSON body into v; an empty body leaves v alone
// and reports false.
func decodeBody(r *http.Request, v any) (bool, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return false, errorf(http.StatusBadRequest, "reading request body: %v", err)
	}
	if len(data) > maxBody {
		return false, errorf(http.StatusRequestEntityTooLarge, "request body larger than %d bytes", maxBody)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return false, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false, errorf(http.StatusBadRequest, "bad JSON body: %v", err)
	}
	if dec.More() {
		return false, errorf(http.StatusBadRequest, "bad JSON body: trailing data")
	}
	return true, nil
}

func (s *Server) apiPromote(r *http.Request, p []string) (int, any, error) {
	name := p[0]
	if err := snapshot.ValidChannel(name); err != nil {
		return 0, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	var body struct {
		Snapshot string `json:"snapshot"`
	}
	ok, err := decodeBody(r, &body)
	if err != nil {
		return 0, nil, err
	}
	if !ok || body.Snapshot == "" {
		return 0, nil, errorf(http.StatusBadRequest, `body must be {"snapshot": "ID"}`)
	}
	if _, err := snapshot.ParseID(body.Snapshot); err != nil {
		return 0, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	// The catalog caches records; make sure another process has not
	// deleted this one meanwhile.
	if ok, err := s.cat.Exists(r.Context(), body.Snapshot); err != nil {
		return 0, nil, err
	} else if !ok {
		return 0, nil, errorf(http.StatusNotFound, "snapshot %s: %v", body.Snapshot, snapshot.ErrNotFound)
	}
	ch, err := s.cat.Promote(s.actor(r), name, body.Snapshot)
	if err != nil {
		return 0, nil, err
	}
	s.log.Info("channel promoted", "channel", name, "snapshot", body.Snapshot)
	s.changed(r.Context())
	return http.StatusOK, ch.Detailed(), nil
}

func (s *Server) apiRollback(r *http.Request, p []string) (int, any, error) {
	name := p[0]
	if err := snapshot.ValidChannel(name); err != nil {
		return 0, nil, errorf(http.StatusBadRequest, "%v", err)
	}
	ch, err := s.cat.Rollback(s.actor(r), name)
	if err != nil {
		return 0, nil, err
	}
	s.log.Info("channel rolled back", "channel", name, "snapshot", ch.Snapshot)
	s.changed(r.Context())
	return http.StatusOK, ch.Detailed(), nil
}

func (s *Server) apiStartSync(r *http.Request, _ []string) (int, any, error) {
	if s.opt.Syncs == nil {
		return 0, nil, errorf(http.StatusNotImplemented, "this server does not run syncs")
	}
	var body struct {
		Sources []string `json:"sources"`
	}
	if _, err := decodeBody(r, &body); err != nil {
		return 0, nil, err
	}
	id, err := s.opt.Syncs.Start(detach(r), body.Sources)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, map[string]any{"id": id, "status": "/api/v1/syncs/" + strconv.Itoa(id)}, nil
}

func (s *Server) apiSync(r *http.Request, p []string) (int, any, error) {
	if s.opt.Syncs == nil {
		return 0, nil, errorf(http.StatusNotImplemented, "this server does not run syncs")
	}
	id, err := strconv.Atoi(p[0])
	if err != nil {
		return 0, nil, errorf(http.StatusBadRequest, "sync id %q: not a number", p[0])
	}
	st, ok := s.opt.Syncs.Status(id)
	if !ok {
		return 0, nil, errorf(http.StatusNotFound, "sync %d: %v", id, snapshot.ErrNotFound)
	}
	return http.StatusOK, st, nil
}

// detach returns a context that outlives the request (a sync keeps going
// after the 202).
func detach(r *http.Request) context.Context { return context.WithoutCancel(r.Context()) }

// streamer is a handler's answer that is not JSON but a stream.
type streamer interface {
	stream(s *Server, w http.ResponseWriter, r *http.Request)
}

// apiExport answers GET /api/v1/snapshots/{ID}/export?since=BASE with the
// air-gap bundle `mirrord export ID --since BASE -o -` writes. It needs
// the token: a bundle is the whole content of a snapshot.
func (s *Server) apiExport(r *http.Request, p []string) (int, any, error) {
	if s.opt.Exporter == nil {
		return 0, nil, errorf(http.StatusNotImplemented, "this server does not export bundles")
	}
	if _, _, err := s.exactRecord(r, p[0]); err != nil {
		return 0, nil, err
	}
	since := r.URL.Query().Get("since")
	if since != "" {
		if _, _, err := s.exactRecord(r, since); err != nil {
			return 0, nil, fmt.Errorf("since: %w", err)
		}
	}
	return http.StatusOK, exportStream{id: p[0], since: since}, nil
}

type exportStream struct{ id, since string }

func (e exportStream) stream(s *Server, w http.ResponseWriter, r *http.Request) {
	name := "mirrord-" + e.id
	if e.since != "" {
		name += "-since-" + e.since
	}
	lw := &lazyWriter{w: w, header: func(h http.Header) {
		h.Set("Content-Type", "application/zstd")
		h.Set("Content-Disposition", `attachment; filename="`+name+`.bundle"`)
		h.Set("Cache-Control", "no-store")
	}}
	if r.Method == http.MethodHead {
		lw.start()
		return
	}
	err := s.opt.Exporter.Export(r.Context(), lw, e.id, e.since)
	switch {
	case err != nil && !lw.started:
		s.writeErr(w, r, err)
	case err != nil:
		// Mid-stream: cut the connection so the client sees a failed
		// transfer, not a short bundle that merely fails to import.
		s.log.Error("export failed mid-stream", "snapshot", e.id, "since", e.since, "err", err)
		panic(http.ErrAbortHandler)
	}
}

// lazyWriter sends the success headers with the first byte, so an error
// found before that can still be answered with its status.
type lazyWriter struct {
	w       http.ResponseWriter
	header  func(http.Header)
	started bool
}

func (l *lazyWriter) start() {
	if !l.started {
		l.started = true
		l.header(l.w.Header())
		l.w.WriteHeader(http.StatusOK)
	}
}

func (l *lazyWriter) Write(b []byte) (int, error) {
	l.start()
	return l.w.Write(b)
}

// actor is r's context, naming who moves a channel through the API
// (recorded in the move as By).
func (s *Server) actor(r *http.Request) context.Context {
	from := r.RemoteAddr
	if host, _, err := net.SplitHostPort(from); err == nil {
		from = host
	}
	return snapshot.WithActor(r.Context(), "api from "+from+" on "+s.replica)
}
