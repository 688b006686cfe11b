package storage

import (
	"errors"
	"io/fs"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts and times the calls a remote backend makes to its service.
type Metrics struct {
	requests *prometheus.CounterVec   // operation, outcome
	latency  *prometheus.HistogramVec // operation
}

// NewMetrics registers djftpd_storage_requests_total and
// djftpd_storage_request_duration_seconds on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "storage_requests_total",
			Help: "Calls to the object storage by operation and outcome (ok, not_found, denied, error).",
		}, []string{"operation", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "djftpd", Name: "storage_request_duration_seconds",
			Help:    "Duration of calls to the object storage by operation.",
			Buckets: prometheus.ExponentialBuckets(0.002, 2, 14),
		}, []string{"operation"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// observe records one call; a nil *Metrics records nothing.
func (m *Metrics) observe(op string, start time.Time, err error) {
	if m == nil {
		return
	}
	m.requests.WithLabelValues(op, outcome(err)).Inc()
	m.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

func outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, fs.ErrNotExist):
		return "not_found"
	case errors.Is(err, fs.ErrPermission):
		return "denied"
	default:
		return "error"
	}
}
