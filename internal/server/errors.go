package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"strconv"

	"github.com/mirrord/mirrord/internal/snapshot"
	"github.com/mirrord/mirrord/internal/store"
)

// httpError is an error with an explicit HTTP status.
type httpError struct {
	code int
	msg  string
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

var errNotImplemented = errors.New("not implemented")

// statusOf maps an error to an HTTP status.
func statusOf(err error) int {
	var he *httpError
	switch {
	case errors.As(err, &he):
		return he.code
	case errors.Is(err, snapshot.ErrNotFound), errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, snapshot.ErrInUse), errors.Is(err, snapshot.ErrNoHistory),
		errors.Is(err, ErrSyncRunning), errors.Is(err, store.ErrLocked):
		return http.StatusConflict
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, errNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// writeErr answers with err's status and message.
func (s *Server) writeErr(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		err = errors.New("unknown error")
	}
	code := statusOf(err)
	if code >= 500 {
		// Logged with the request by Server.finish.
		switch rc := w.(type) {
		case *recorder:
			rc.err = err
		case *plainRecorder:
			rc.err = err
		}
	}
	s.writeError(w, r, code, err.Error())
}

type errorBody struct {
	Error string `json:"error"`
}

// writeError answers {"error": msg} with status code.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, code int, msg string) {
	h := w.Header()
	h.Del("Etag")
	h.Del("Last-Modified")
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	if code == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer realm="mirrord"`)
	}
	if code == http.StatusServiceUnavailable {
		h.Set("Retry-After", "10")
	}
	body, _ := json.Marshal(errorBody{msg})
	body = append(body, '\n')
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
}

// writeJSON answers v as indented JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		code = http.StatusInternalServerError
		body, _ = json.Marshal(errorBody{"encoding response: " + err.Error()})
	}
	body = append(body, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(code)
	w.Write(body)
}

func quote(s string) string { return strconv.Quote(s) }

func htmlEscape(s string) string { return html.EscapeString(s) }
