package fetch

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestStallTransport: a server that stops sending (before headers, or mid
// body) fails the request within the stall timeout, wrapping ErrStalled;
// a steady one is untouched.
func TestStallTransport(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/headers":
			<-release
		case "/body":
			w.Write([]byte("first part"))
			w.(http.Flusher).Flush()
			<-release
		default:
			for range 5 {
				w.Write([]byte("tick "))
				w.(http.Flusher).Flush()
				time.Sleep(50 * time.Millisecond)
			}
		}
	}))
	defer srv.Close()
	defer close(release) // before Close: it waits for the handlers
	c := &http.Client{Transport: StallTransport(http.DefaultTransport, 300*time.Millisecond)}
	if _, err := c.Get(srv.URL + "/headers"); !errors.Is(err, ErrStalled) {
		t.Errorf("no headers: %v, want ErrStalled", err)
	}
	resp, err := c.Get(srv.URL + "/body")
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !errors.Is(err, ErrStalled) {
		t.Errorf("stalled body: %v, want ErrStalled", err)
	}
	resp, err = c.Get(srv.URL + "/steady")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || len(body) != 25 {
		t.Errorf("steady body: %q, %v", body, err)
	}
	if StallTransport(http.DefaultTransport, 0) != http.DefaultTransport {
		t.Error("d <= 0 should return the transport unchanged")
	}
}
