package retention

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/steward-privacy/steward/connectors"
)

// Metrics are the sweeps' Prometheus series. A nil *Metrics records
// nothing (tests and the CLI).
type Metrics struct {
	records  *prometheus.CounterVec
	errors   *prometheus.CounterVec
	duration *prometheus.HistogramVec
	lastRun  *prometheus.GaugeVec
	due      *prometheus.GaugeVec
}

// NewMetrics registers the series on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_retention_records_total",
			Help: "Records handled by retention sweeps, by system, dataset and outcome (deleted, anonymized, held, kept).",
		}, []string{"system", "dataset", "outcome"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "steward_retention_sweep_errors_total", Help: "Failed retention sweep attempts, by system and dataset.",
		}, []string{"system", "dataset"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "steward_retention_sweep_duration_seconds", Help: "Time a dataset's sweep took, all attempts together.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		}, []string{"system", "dataset"}),
		lastRun: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "steward_retention_last_run_timestamp_seconds", Help: "When the last retention run finished, by status (completed, failed).",
		}, []string{"status"}),
		due: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "steward_retention_due_records", Help: "Records due when a dataset's last sweep began (dry runs included).",
		}, []string{"system", "dataset"}),
	}
	reg.MustRegister(m.records, m.errors, m.duration, m.lastRun, m.due)
	return m
}

func (m *Metrics) batch(system, dataset string, b connectors.SweepBatch) {
	if m == nil {
		return
	}
	m.records.WithLabelValues(system, dataset, "deleted").Add(float64(b.Deleted))
	m.records.WithLabelValues(system, dataset, "anonymized").Add(float64(b.Anonymized))
}

func (m *Metrics) failed(system, dataset string) {
	if m != nil {
		m.errors.WithLabelValues(system, dataset).Inc()
	}
}

func (m *Metrics) swept(system, dataset, status string, res connectors.SweepResult, took time.Duration, dryRun bool) {
	if m == nil {
		return
	}
	m.due.WithLabelValues(system, dataset).Set(float64(res.Matched))
	if dryRun {
		return
	}
	m.records.WithLabelValues(system, dataset, "held").Add(float64(res.Held))
	m.records.WithLabelValues(system, dataset, "kept").Add(float64(res.Kept))
	if status == StatusSucceeded {
		m.duration.WithLabelValues(system, dataset).Observe(took.Seconds())
	}
}

func (m *Metrics) finished(r Run) {
	if m != nil && !r.DryRun && r.FinishedAt != nil {
		m.lastRun.WithLabelValues(r.Status).Set(float64(r.FinishedAt.Unix()))
	}
}
