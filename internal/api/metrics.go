package api

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the service's Prometheus collectors on their own registry (no
// global state, so two servers in one test process do not collide).
type Metrics struct {
	Registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	decisions *prometheus.CounterVec

	// Resolved children, cached: WithLabelValues hashes its labels on every
	// call, which shows up on a path that answers in microseconds.
	reqChildren sync.Map // reqKey -> prometheus.Counter
	latChildren sync.Map // latKey -> prometheus.Observer
	decChildren sync.Map // decKey -> prometheus.Counter
}

type reqKey struct {
	route, method string
	status        int
}
type latKey struct{ route, method string }
type decKey struct {
	allow  bool
	reason string
}

// NewMetrics registers the collectors.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_http_requests_total", Help: "HTTP requests by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "steward_http_request_duration_seconds", Help: "HTTP request latency by route pattern and method.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "method"}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_consent_decisions_total", Help: "Consent check decisions by result and reason.",
		}, []string{"result", "reason"}),
	}
	reg.MustRegister(m.requests, m.latency, m.decisions,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *Metrics) observeRequest(route, method string, status int, d time.Duration) {
	rk := reqKey{route, method, status}
	c, ok := m.reqChildren.Load(rk)
	if !ok {
		// Keys outlive the request: copy strings that may point into
		// fiber's reused request buffers before storing them.
		rk = reqKey{strings.Clone(route), strings.Clone(method), status}
		c, _ = m.reqChildren.LoadOrStore(rk, m.requests.WithLabelValues(rk.route, rk.method, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
	lk := latKey{route, method}
	o, ok := m.latChildren.Load(lk)
	if !ok {
		lk = latKey{strings.Clone(route), strings.Clone(method)}
		o, _ = m.latChildren.LoadOrStore(lk, m.latency.WithLabelValues(lk.route, lk.method))
	}
	o.(prometheus.Observer).Observe(d.Seconds())
}

func (m *Metrics) observeDecision(allow bool, reason string) {
	k := decKey{allow, reason}
	c, ok := m.decChildren.Load(k)
	if !ok {
		k.reason = strings.Clone(reason)
		result := "deny"
		if allow {
			result = "allow"
		}
		c, _ = m.decChildren.LoadOrStore(k, m.decisions.WithLabelValues(result, reason))
	}
	c.(prometheus.Counter).Inc()
}
