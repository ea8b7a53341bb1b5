package fetch

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts upstream traffic. A nil *Metrics records nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	bytes    *prometheus.CounterVec
	retries  *prometheus.CounterVec
}

// NewMetrics creates the fetch counters and registers them with reg (when
// not nil). Registering twice with one registry reuses the existing
// counters instead of failing.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mirrord_fetch_requests_total",
			Help: "Upstream HTTP requests by host and status code (\"error\" when no response).",
		}, []string{"host", "code"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mirrord_fetch_bytes_total",
			Help: "Response body bytes received from upstream hosts.",
		}, []string{"host"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mirrord_fetch_retries_total",
			Help: "Upstream requests retried after a transient failure.",
		}, []string{"host"}),
	}
	if reg != nil {
		m.requests = register(reg, m.requests)
		m.bytes = register(reg, m.bytes)
		m.retries = register(reg, m.retries)
	}
	return m
}

func register(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	err := reg.Register(c)
	if err == nil {
		return c
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
			return existing
		}
	}
	// Like MustRegister: a conflicting metric is a programming error.
	panic(fmt.Sprintf("fetch: register metrics: %v", err))
}

// request counts one request; code 0 means no response was received.
func (m *Metrics) request(host string, code int) {
	if m == nil {
		return
	}
	label := "error"
	if code != 0 {
		label = strconv.Itoa(code)
	}
	m.requests.WithLabelValues(host, label).Inc()
}

func (m *Metrics) received(host string, n int64) {
	if m == nil || n <= 0 {
		return
	}
	m.bytes.WithLabelValues(host).Add(float64(n))
}

func (m *Metrics) retry(host string) {
	if m == nil {
		return
	}
	m.retries.WithLabelValues(host).Inc()
}
