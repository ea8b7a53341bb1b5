package server

import (
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	reqs   *prometheus.CounterVec
	routes [numRoutes]routeStats
}

type routeStats struct {
	bytes prometheus.Counter
	dur   prometheus.Observer
	codes [600]atomic.Pointer[prometheus.Counter]
}

func newMetrics(reg *prometheus.Registry, own bool, snapshots, lastSync func() float64) (*metrics, error) {
	reqs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mirrord_http_requests_total",
		Help: "HTTP requests served, by route and status code.",
	}, []string{"route", "code"})
	bytes := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mirrord_http_response_bytes_total",
		Help: "HTTP response body bytes sent, by route.",
	}, []string{"route"})
	dur := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "mirrord_http_request_duration_seconds",
		Help:    "Time to serve an HTTP request, by route.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route"})
	snaps := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mirrord_snapshots",
		Help: "Number of snapshots.",
	}, snapshots)
	last := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "mirrord_last_successful_sync_timestamp_seconds",
		Help: "Unix time of the last successful sync, by any process sharing the store (0: none yet).",
	}, lastSync)
	var err error
	reqs, err = register(reg, reqs)
	if err != nil {
		return nil, err
	}
	if bytes, err = register(reg, bytes); err != nil {
		return nil, err
	}
	if dur, err = register(reg, dur); err != nil {
		return nil, err
	}
	for _, c := range []prometheus.Collector{snaps, last} {
		if _, err = register(reg, c); err != nil {
			return nil, err
		}
	}
	if own {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	}
	m := &metrics{reqs: reqs}
	for i := range m.routes {
		m.routes[i].bytes = bytes.WithLabelValues(routeNames[i])
		m.routes[i].dur = dur.WithLabelValues(routeNames[i])
	}
	return m, nil
}

// register registers c, or returns the collector already registered under
// the same description (a second server on one registry).
func register[C prometheus.Collector](reg *prometheus.Registry, c C) (C, error) {
	err := reg.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if ex, ok := are.ExistingCollector.(C); ok {
			return ex, nil
		}
	}
	return c, err
}

func (m *metrics) observe(route, code int, n int64, d time.Duration) {
	rm := &m.routes[route]
	rm.dur.Observe(d.Seconds())
	if n > 0 {
		rm.bytes.Add(float64(n))
	}
	if code < 0 || code >= len(rm.codes) {
		m.reqs.WithLabelValues(routeNames[route], strconv.Itoa(code)).Inc()
		return
	}
	p := rm.codes[code].Load()
	if p == nil {
		c := m.reqs.WithLabelValues(routeNames[route], strconv.Itoa(code))
		p = &c
		rm.codes[code].Store(p)
	}
	(*p).Inc()
}

func promhttpHandler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
