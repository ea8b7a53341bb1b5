// Package faultproxy is a fault-injecting HTTP proxy for tests: it sits
// on 127.0.0.1 in front of a fixture upstream (apttest, yumtest, gittest,
// any http.Handler or URL) and breaks responses the way unreliable
// networks and hostile mirrors do: 5xx bursts, 429 with Retry-After,
// connections reset mid-body, bodies cut short under a correct
// Content-Length, flipped bytes, stalls before headers or mid-body,
// redirects to another server, and wrong Content-Types.
//
// Each request path is faulted on its first Times requests (the rest pass
// through untouched), so a client that retries can recover from transient
// faults while one that does not is seen to fail. Safe for concurrent use.
package faultproxy

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is one way to break a response.
type Kind int

const (
	None           Kind = iota
	ServerErrors        // 503 Service Unavailable
	TooManyRequest      // 429 with Retry-After: 1
	ResetMidBody        // half the body, then a TCP reset
	Truncated           // the real Content-Length, half the body, then close
	FlippedByte         // the whole body with one byte inverted
	StallBody           // half the body, then silence for Stall
	StallHeaders        // silence for Stall before any response
	RedirectAway        // 302 to Elsewhere (a server that serves other bytes)
	WrongType           // the right body, Content-Type: text/html
)

var kindNames = map[Kind]string{
	None: "none", ServerErrors: "5xx burst", TooManyRequest: "429 Retry-After", ResetMidBody: "reset mid-body",
	Truncated: "truncated body", FlippedByte: "flipped byte", StallBody: "stall mid-body",
	StallHeaders: "stall before headers", RedirectAway: "redirect elsewhere", WrongType: "wrong Content-Type",
}

func (k Kind) String() string { return kindNames[k] }

// Kinds lists every fault.
func Kinds() []Kind {
	return []Kind{ServerErrors, TooManyRequest, ResetMidBody, Truncated, FlippedByte, StallBody, StallHeaders, RedirectAway, WrongType}
}

// Options shape a Proxy.
type Options struct {
	Kind Kind
	// Times is how many requests of each path are faulted (default 1).
	Times int
	// Match selects the paths to fault (default: every path).
	Match func(path string) bool
	// Stall is how long stalls last (default 30s; a client's read
	// timeout should end them first).
	Stall time.Duration
	// MinBody: responses with a shorter body are passed through for the
	// body faults (ResetMidBody, Truncated, FlippedByte, StallBody), which
	// need bytes to break. Default 1.
	MinBody int
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	URL       string // base URL clients use instead of the upstream's
	Elsewhere string // where RedirectAway points: serves 0xEE bytes
	opt       Options
	upstream  *url.URL
	srv       *httptest.Server
	away      *httptest.Server
	client    *http.Client
	mu        sync.Mutex
	seen      map[string]int
	faults    atomic.Int64
	stop      chan struct{}
	stopOnce  sync.Once
}

// New starts a proxy for upstream (an http:// base URL) and stops it when
// the test ends.
func New(t interface {
	Helper()
	Cleanup(func())
	Fatalf(string, ...any)
}, upstream string, opt Options) *Proxy {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil || u.Scheme != "http" {
		t.Fatalf("faultproxy: upstream %q: want an http:// URL (%v)", upstream, err)
	}
	if opt.Times <= 0 {
		opt.Times = 1
	}
	if opt.Stall <= 0 {
		opt.Stall = 30 * time.Second
	}
	if opt.MinBody <= 0 {
		opt.MinBody = 1
	}
	p := &Proxy{opt: opt, upstream: u, seen: map[string]int{}, stop: make(chan struct{}),
		client: &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	p.away = httptest.NewServer(http.HandlerFunc(serveElsewhere))
	p.srv = httptest.NewServer(p)
	p.URL = p.srv.URL + strings.TrimSuffix(u.Path, "/")
	p.Elsewhere = p.away.URL
	t.Cleanup(p.Close)
	return p
}

// Close ends stalls and stops the servers.
func (p *Proxy) Close() {
	p.stopOnce.Do(func() { close(p.stop) })
	p.srv.CloseClientConnections()
	p.srv.Close()
	p.away.Close()
}

// Faults is how many responses the proxy has broken so far.
func (p *Proxy) Faults() int64 { return p.faults.Load() }

// serveElsewhere is a mirror that answers every path with wrong bytes.
func serveElsewhere(w http.ResponseWriter, r *http.Request) {
	body := bytes.Repeat([]byte{0xEE}, 4096)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// take reports whether this request of path is to be faulted.
func (p *Proxy) take(path string) bool {
	if p.opt.Kind == None || (p.opt.Match != nil && !p.opt.Match(path)) {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen[path]++
	return p.seen[path] <= p.opt.Times
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	fault := p.take(r.URL.Path)
	switch k := p.opt.Kind; {
	case fault && k == ServerErrors:
		p.faults.Add(1)
		http.Error(w, "injected: upstream overloaded", http.StatusServiceUnavailable)
		return
	case fault && k == TooManyRequest:
		p.faults.Add(1)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "injected: slow down", http.StatusTooManyRequests)
		return
	case fault && k == StallHeaders:
		p.faults.Add(1)
		p.sleep()
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close() // no response at all, even after the stall
		}
		return
	case fault && k == RedirectAway:
		p.faults.Add(1)
		http.Redirect(w, r, p.Elsewhere+r.URL.RequestURI(), http.StatusFound)
		return
	}
	resp, err := p.forward(r)
	if err != nil {
		http.Error(w, "faultproxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		http.Error(w, "faultproxy: reading upstream: "+err.Error(), http.StatusBadGateway)
		return
	}
	hdr := w.Header()
	for k, vs := range resp.Header {
		hdr[k] = vs
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	if fault && p.opt.Kind == WrongType {
		p.faults.Add(1)
		hdr.Set("Content-Type", "text/html; charset=utf-8")
	}
	bodyFault := fault && resp.StatusCode == http.StatusOK && len(body) >= p.opt.MinBody
	switch {
	case bodyFault && p.opt.Kind == FlippedByte:
		p.faults.Add(1)
		body = bytes.Clone(body)
		body[len(body)/2] ^= 0xFF
	case bodyFault && (p.opt.Kind == ResetMidBody || p.opt.Kind == Truncated || p.opt.Kind == StallBody):
		p.faults.Add(1)
		p.breakBody(w, resp.StatusCode, body)
		return
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
}

// forward asks the upstream, with the request's method, headers and body.
func (p *Proxy) forward(r *http.Request) (*http.Response, error) {
	u := *p.upstream
	u.Path, u.RawPath, u.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	req, err := http.NewRequestWithContext(r.Context(), r.Method, u.String(), r.Body)
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	req.ContentLength = r.ContentLength
	return p.client.Do(req)
}

// breakBody sends the headers (with the full Content-Length) and half the
// body, then resets, closes or stalls the connection.
func (p *Proxy) breakBody(w http.ResponseWriter, code int, body []byte) {
	w.WriteHeader(code)
	w.Write(body[:len(body)/2])
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if p.opt.Kind == StallBody {
		p.sleep()
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(fmt.Sprintf("faultproxy: hijack: %v", err))
	}
	if tc, ok := conn.(*net.TCPConn); ok && p.opt.Kind == ResetMidBody {
		_ = tc.SetLinger(0) // close sends RST, not FIN
	}
	conn.Close()
}

func (p *Proxy) sleep() {
	t := time.NewTimer(p.opt.Stall)
	defer t.Stop()
	select {
	case <-t.C:
	case <-p.stop:
	}
}
