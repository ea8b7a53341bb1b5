package faultproxy

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// Each fault does what it says on a path's first request, and the second
// request of the path passes through untouched.
func TestKinds(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789abcdef"), 4096)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	}))
	defer up.Close()
	client := &http.Client{Timeout: 2 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	fetch := func(url string) (*http.Response, []byte, error) {
		resp, err := client.Get(url)
		if err != nil {
			return nil, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp, b, err
	}
	for _, k := range Kinds() {
		t.Run(k.String(), func(t *testing.T) {
			p := New(t, up.URL, Options{Kind: k, Stall: 5 * time.Second})
			resp, got, err := fetch(p.URL + "/f")
			switch k {
			case ServerErrors, TooManyRequest:
				if err != nil || resp.StatusCode < 429 || (k == TooManyRequest && resp.Header.Get("Retry-After") != "1") {
					t.Errorf("%v: %v %v", k, resp, err)
				}
			case ResetMidBody, Truncated, StallBody, StallHeaders:
				if err == nil {
					t.Errorf("%v: read %d bytes without an error", k, len(got))
				}
			case FlippedByte:
				if err != nil || len(got) != len(body) || bytes.Equal(got, body) {
					t.Errorf("%v: %d bytes, equal %v, %v", k, len(got), bytes.Equal(got, body), err)
				}
			case RedirectAway:
				if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), p.Elsewhere) {
					t.Errorf("%v: %v %v", k, resp, err)
				}
			case WrongType:
				if err != nil || !bytes.Equal(got, body) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
					t.Errorf("%v: %v %v", k, resp.Header, err)
				}
			}
			if p.Faults() != 1 {
				t.Errorf("Faults() = %d, want 1", p.Faults())
			}
			resp, got, err = fetch(p.URL + "/f")
			if err != nil || resp.StatusCode != 200 || !bytes.Equal(got, body) {
				t.Errorf("second request: %v %d bytes %v", resp, len(got), err)
			}
		})
	}
}
