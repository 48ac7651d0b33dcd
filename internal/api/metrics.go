package api

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/steward-privacy/steward/internal/cowmap"
)

// Metrics are the service's Prometheus collectors on their own registry (no
// global state, so two servers in one test process do not collide).
type Metrics struct {
	Registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	decisions *prometheus.CounterVec

	// Resolved children, cached: WithLabelValues hashes its labels on every
	// call, which shows up on a path that answers in microseconds. The
	// label sets are few, as cowmap needs: routes are patterns (or
	// "unmatched"), methods are fiber's nine (it answers any other itself,
	// before the middleware), statuses and reasons are Steward's own.
	reqChildren cowmap.Map[reqKey, prometheus.Counter]
	latChildren cowmap.Map[latKey, prometheus.Observer]
	decChildren cowmap.Map[decKey, prometheus.Counter]
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
	// Keys outlive the request: the kept ones copy strings that may point
	// into fiber's reused request buffers.
	m.reqChildren.LoadOrAdd(reqKey{route, method, status}, func(k reqKey) (reqKey, prometheus.Counter) {
		k = reqKey{strings.Clone(k.route), strings.Clone(k.method), k.status}
		return k, m.requests.WithLabelValues(k.route, k.method, strconv.Itoa(k.status))
	}).Inc()
	m.latChildren.LoadOrAdd(latKey{route, method}, func(k latKey) (latKey, prometheus.Observer) {
		k = latKey{strings.Clone(k.route), strings.Clone(k.method)}
		return k, m.latency.WithLabelValues(k.route, k.method)
	}).Observe(d.Seconds())
}

func (m *Metrics) observeDecision(allow bool, reason string) {
	m.decChildren.LoadOrAdd(decKey{allow, reason}, func(k decKey) (decKey, prometheus.Counter) {
		k.reason = strings.Clone(k.reason)
		result := "deny"
		if k.allow {
			result = "allow"
		}
		return k, m.decisions.WithLabelValues(result, k.reason)
	}).Inc()
}
