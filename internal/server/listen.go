package server

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Limits bound what one client may hold or send. Zero fields take the
// defaults below.
type Limits struct {
	// HeaderTimeout is how long a client has, after connecting, to send
	// its request headers (and, with TLS, to open the handshake); a
	// slowloris client is cut off after it.
	HeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps a request's header block (431 past it).
	MaxHeaderBytes int
	// MaxConnections caps open client connections; past it, new ones
	// wait in the kernel's accept queue until one closes. 0: default.
	MaxConnections int
}

// Defaults for Limits.
const (
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultIdleTimeout    = 2 * time.Minute
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxConnections = 10000
)

func (l Limits) withDefaults() Limits {
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = DefaultHeaderTimeout
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = DefaultIdleTimeout
	}
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if l.MaxConnections <= 0 {
		l.MaxConnections = DefaultMaxConnections
	}
	return l
}

// HTTPServer returns the http.Server serve runs h with: header timeout and
// size cap, idle timeout, and errors logged to log.
func HTTPServer(h http.Handler, log *slog.Logger, lim Limits) *http.Server {
	lim = lim.withDefaults()
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.HeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    lim.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// LoadTLS reads a PEM certificate (chain after the leaf) and its key for
// serving. TLS 1.2 is the oldest version offered.
func LoadTLS(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls: loading cert_file %s and key_file %s: %w (both must be PEM, the key matching the certificate)", certFile, keyFile, err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12, NextProtos: []string{"http/1.1"}}, nil
}

// Listen wraps ln for serving: at most lim.MaxConnections connections are
// open at once, and with cfg set a connection whose first byte opens a TLS
// handshake is served as HTTPS while any other is plain HTTP (reads work
// either way; the API refuses plain-HTTP writes from other hosts, see
// Options.SecureWrites). A connection that sends nothing within
// lim.HeaderTimeout is closed without occupying a server goroutine.
func Listen(ln net.Listener, cfg *tls.Config, lim Limits) net.Listener {
	lim = lim.withDefaults()
	l := &listener{Listener: ln, tls: cfg, timeout: lim.HeaderTimeout, slots: make(chan struct{}, lim.MaxConnections)}
	if cfg != nil {
		l.ready = make(chan net.Conn)
		l.done = make(chan struct{})
		go l.acceptLoop()
	}
	return l
}

type listener struct {
	net.Listener
	tls     *tls.Config
	timeout time.Duration
	slots   chan struct{} // one per open connection
	ready   chan net.Conn // sniffed connections (TLS mode)
	done    chan struct{}
	errMu   sync.Mutex
	err     error
}

func (l *listener) Accept() (net.Conn, error) {
	if l.tls == nil {
		return l.acceptSlot()
	}
	select {
	case c := <-l.ready:
		return c, nil
	case <-l.done:
		l.errMu.Lock()
		defer l.errMu.Unlock()
		return nil, l.err
	}
}

// acceptSlot accepts once a connection slot is free; the slot is given
// back when the connection closes.
func (l *listener) acceptSlot() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &slotConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *listener) acceptLoop() {
	for {
		c, err := l.acceptSlot()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				// EMFILE, ECONNABORTED, ...: wait and go on, as
				// http.Server does for a plain listener.
				time.Sleep(50 * time.Millisecond)
				continue
			}
			l.errMu.Lock()
			l.err = err
			l.errMu.Unlock()
			close(l.done)
			return
		}
		go l.sniff(c)
	}
}

// sniff reads the first byte: 0x16 is a TLS handshake record.
func (l *listener) sniff(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(l.timeout))
	pc := &peekedConn{Conn: c, r: bufio.NewReaderSize(c, 1024)}
	first, err := pc.r.Peek(1)
	if err != nil {
		c.Close() // said nothing in time, or went away
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	var out net.Conn = pc
	if first[0] == 0x16 {
		out = tls.Server(pc, l.tls)
	}
	select {
	case l.ready <- out:
	case <-l.done:
		c.Close()
	}
}

// slotConn gives its listener slot back on the first Close.
type slotConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *slotConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// ReadFrom keeps sendfile(2) for responses: net/http copies a file body
// through the connection's ReadFrom when it has one.
func (c *slotConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// CloseWrite lets net/http half-close the connection (as it does on a
// *net.TCPConn) before it closes it.
func (c *slotConn) CloseWrite() error { return closeWrite(c.Conn) }

func closeWrite(c net.Conn) error {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// peekedConn is a connection whose first bytes were read ahead.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *peekedConn) CloseWrite() error { return closeWrite(c.Conn) }

func (c *peekedConn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{c.Conn}, r)
}

// loopbackPeer reports whether a request's remote address is on this host.
func loopbackPeer(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
