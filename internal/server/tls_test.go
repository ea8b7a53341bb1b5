package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mirrord/mirrord/internal/requiretool"
	"github.com/mirrord/mirrord/internal/tlstest"
)

// served is a fixture's handler behind the listener and http.Server that
// serve runs, on 127.0.0.1.
type served struct {
	*fixture
	addr string
	logs *syncBuffer
}

func serveHardened(t *testing.T, tlsCfg *tls.Config, lim Limits) *served {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	f := newFixture(t, func(o *Options) {
		o.Logger = log
		o.SecureWrites = tlsCfg != nil
	})
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := HTTPServer(f.srv, log, lim)
	go srv.Serve(Listen(raw, tlsCfg, lim))
	t.Cleanup(func() { srv.Close() })
	return &served{fixture: f, addr: raw.Addr().String(), logs: logs}
}

func getBody(t *testing.T, c *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	res, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, b
}

// tls: HTTPS on listen, verified against a CA made in the test, by Go's
// client and by curl; plain HTTP on the same port still serves reads.
func TestTLSOnListen(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	cfg, err := LoadTLS(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	s := serveHardened(t, cfg, Limits{})
	path := "/snapshots/" + s.s2 + "/file/images/large.bin"
	want := s.files["file/images/large.bin"]

	tc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}
	res, body := getBody(t, tc, "https://"+s.addr+path)
	if res.StatusCode != 200 || res.TLS == nil || !bytes.Equal(body, want) {
		t.Fatalf("https: %d tls=%v %d bytes", res.StatusCode, res.TLS != nil, len(body))
	}
	res, body = getBody(t, http.DefaultClient, "http://"+s.addr+path)
	if res.StatusCode != 200 || !bytes.Equal(body, want) {
		t.Fatalf("plain http on the TLS port: %d %d bytes", res.StatusCode, len(body))
	}
	if _, err := (&http.Client{}).Get("https://" + s.addr + path); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA connected: %v", err)
	}

	curl := requiretool.Path(t, "curl")
	out, err := exec.Command(curl, "-fsS", "--cacert", ca.CertFile, "https://"+s.addr+"/keys/mirrord.asc").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "BEGIN PGP PUBLIC KEY BLOCK") {
		t.Errorf("curl --cacert: %v\n%s", err, out)
	}
	err = exec.Command(curl, "-fsS", "https://"+s.addr+"/keys/mirrord.asc").Run()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 60 {
		t.Errorf("curl without the CA: %v, want exit 60 (peer certificate cannot be authenticated)", err)
	}
	if _, err := LoadTLS(key, cert); err == nil || !strings.Contains(err.Error(), "cert_file") {
		t.Errorf("swapped cert and key: %v", err)
	}
}

// With tls: configured, writes over plain HTTP from another host are
// refused before the token is even looked at; TLS or loopback pass; every
// write attempt is logged with the peer.
func TestSecureWrites(t *testing.T) {
	ca := tlstest.NewCA(t)
	cert, key := ca.Issue(t, "127.0.0.1")
	cfg, err := LoadTLS(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	s := serveHardened(t, cfg, Limits{})
	promote := func(remote string, viaTLS bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("POST", "/api/v1/channels/staging/promote", strings.NewReader(`{"snapshot":"`+s.s1+`"}`))
		r.RemoteAddr = remote
		r.Header.Set("Authorization", "Bearer "+testToken)
		if viaTLS {
			r.TLS = &tls.ConnectionState{}
		}
		w := httptest.NewRecorder()
		s.srv.ServeHTTP(w, r)
		return w
	}
	if w := promote("192.0.2.7:4242", false); w.Code != 403 || !strings.Contains(w.Body.String(), "https://") {
		t.Errorf("plain HTTP write from another host: %d %s", w.Code, w.Body)
	}
	if w := promote("[2001:db8::1]:4242", true); w.Code != 200 {
		t.Errorf("TLS write from another host: %d %s", w.Code, w.Body)
	}
	if w := promote("127.0.0.1:4242", false); w.Code != 200 {
		t.Errorf("plain HTTP write from loopback: %d %s", w.Code, w.Body)
	}
	// Over the wire too: the real listener, TLS, wrong then right token.
	tc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool}}}
	for _, tok := range []string{"wrong", testToken} {
		req, _ := http.NewRequest("POST", "https://"+s.addr+"/api/v1/channels/production/promote", strings.NewReader(`{"snapshot":"`+s.s2+`"}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		res, err := tc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	logs := s.logs.String()
	for _, want := range []string{
		`msg="api write refused" method=POST path=/api/v1/channels/staging/promote peer=192.0.2.7:4242 tls=false status=403`,
		`msg="api write" method=POST path=/api/v1/channels/staging/promote peer=[2001:db8::1]:4242 tls=true status=200`,
		`msg="api write" method=POST path=/api/v1/channels/staging/promote peer=127.0.0.1:4242 tls=false status=200`,
		`msg="api write refused" method=POST path=/api/v1/channels/production/promote peer=127.0.0.1:`,
		`msg="api write" method=POST path=/api/v1/channels/production/promote peer=127.0.0.1:`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %s\n%s", want, logs)
		}
	}
}

// Headers and bodies are capped: 431 past MaxHeaderBytes, 413 for a body
// larger than the API (1 MiB) or any other route (64 MiB) takes.
func TestRequestCaps(t *testing.T) {
	s := serveHardened(t, nil, Limits{MaxHeaderBytes: 8 << 10})
	base := "http://" + s.addr
	req, _ := http.NewRequest("GET", base+"/healthz", nil)
	req.Header.Set("X-Big", strings.Repeat("x", 16<<10))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("16 KiB header: %d, want 431", res.StatusCode)
	}
	req, _ = http.NewRequest("POST", base+"/api/v1/channels/x/promote", strings.NewReader(`{"snapshot":"`+strings.Repeat("a", 2<<20)+`"}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	res, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB API body: %d, want 413", res.StatusCode)
	}
	// A declared 1 GiB upload is refused before a byte of it is read.
	c, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /snapshots/%s/git/x.git/git-upload-pack HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", s.s2, 1<<30)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := io.ReadAll(io.LimitReader(c, 12))
	if string(line) != "HTTP/1.1 413" {
		t.Errorf("1 GiB upload: %q, want HTTP/1.1 413", line)
	}
}

// Idle and slowloris connections do not stop others from being served:
// 400 of each are held open while a client fetches a file; with a
// connection limit, silent connections are cut at the header timeout and
// free their slots.
func TestIdleConnectionsDoNotBlock(t *testing.T) {
	s := serveHardened(t, nil, Limits{HeaderTimeout: time.Second})
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 800 {
		c, err := net.Dial("tcp", s.addr)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if i%2 == 1 {
			fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n") // never finished
		}
	}
	path := "/snapshots/" + s.s2 + "/file/images/big.bin"
	res, body := getBody(t, http.DefaultClient, "http://"+s.addr+path)
	if res.StatusCode != 200 || !bytes.Equal(body, s.files["file/images/big.bin"]) {
		t.Fatalf("with 800 idle connections: %d, %d bytes", res.StatusCode, len(body))
	}
	// Every held connection is cut at the header timeout.
	for _, c := range conns {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil && isTimeout(err) {
			t.Fatal("an idle connection outlived the header timeout")
		}
	}

	limited := serveHardened(t, nil, Limits{HeaderTimeout: time.Second, MaxConnections: 10})
	for range 10 {
		c, err := net.Dial("tcp", limited.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	res, _ = getBody(t, http.DefaultClient, "http://"+limited.addr+"/healthz")
	if res.StatusCode != 200 {
		t.Fatalf("after the idle connections were cut: %d", res.StatusCode)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
