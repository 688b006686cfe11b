package main

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/djftpd/djftpd/djangoclient"
)

// registerEventMetrics exports the event queue's state.
func registerEventMetrics(reg prometheus.Registerer, q *djangoclient.EventQueue) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "djftpd", Name: "event_queue_depth", Help: "Events held in memory only: not yet written to the spool (without a spool: not yet delivered).",
		}, func() float64 { return float64(q.Stats().Queued) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "djftpd", Name: "event_spool_bytes", Help: "Size of the on-disk event spool.",
		}, func() float64 { return float64(q.Stats().SpoolBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "event_spool_torn_bytes_total",
			Help: "Bytes of torn or corrupt spool records cut off at start (a crash mid-write).",
		}, func() float64 { return float64(q.Stats().TornBytes) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "events_dropped_total",
			Help: "Events dropped: queue or spool full, too large, corrupt in the spool, or poison.",
		}, func() float64 { return float64(q.Stats().Dropped) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "events_poison_dropped_total",
			Help: "Events dropped because Django kept refusing them (400/422/500) while taking later ones; counted in events_dropped_total too.",
		}, func() float64 { return float64(q.Stats().Poisoned) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "events_rejected_total",
			Help: "Events Django's answer rejected for good (listed in \"rejected\"); not sent again.",
		}, func() float64 { return float64(q.Stats().Rejected) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "events_delivered_total", Help: "Events Django accepted.",
		}, func() float64 { return float64(q.Stats().Delivered) }),
	)
}

// newRegistry is the registry /metrics serves: djftpd's collectors plus the Go runtime
// and process collectors.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}
