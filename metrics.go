package main

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/djftpd/djftpd/cache"
	"github.com/djftpd/djftpd/djangoclient"
)

// instrumentedAuth is the Authenticator ftpdriver uses: the cache, measured. A cache
// miss or a stale answer means Django was asked, so those count as auth requests.
type instrumentedAuth struct {
	cache    *cache.Cache
	lookups  *prometheus.CounterVec // result: hit, miss, stale, negative_hit
	requests *prometheus.CounterVec // outcome
	latency  prometheus.Histogram
	// lastOK is when Django last answered (any verified answer), for /readyz.
	lastOK *lastSuccess
}

func newInstrumentedAuth(c *cache.Cache, reg prometheus.Registerer, last *lastSuccess) *instrumentedAuth {
	a := &instrumentedAuth{
		cache: c,
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "auth_cache_lookups_total",
			Help: "Login lookups in the auth cache by result.",
		}, []string{"result"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "auth_requests_total",
			Help: "Calls to Django's auth endpoint by outcome.",
		}, []string{"outcome"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "djftpd", Name: "auth_request_duration_seconds",
			Help:    "Duration of logins that asked Django, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		lastOK: last,
	}
	reg.MustRegister(a.lookups, a.requests, a.latency)
	for _, r := range []cache.Result{cache.ResultHit, cache.ResultMiss, cache.ResultStale, cache.ResultNegativeHit} {
		a.lookups.WithLabelValues(string(r))
	}
	for _, o := range []string{"ok", "invalid_credentials", "rejected", "bad_grant", "unavailable"} {
		a.requests.WithLabelValues(o)
	}
	return a
}

// Authenticate implements ftpdriver.Authenticator.
func (a *instrumentedAuth) Authenticate(ctx context.Context, r djangoclient.AuthRequest) (djangoclient.Grant, error) {
	start := time.Now()
	g, res, err := a.cache.AuthenticateWithResult(ctx, r)
	a.lookups.WithLabelValues(string(res)).Inc()
	if res == cache.ResultMiss || res == cache.ResultStale {
		outcome := authOutcome(err)
		if res == cache.ResultStale {
			outcome = "unavailable" // Django failed; the stale answer covered for it
		}
		a.requests.WithLabelValues(outcome).Inc()
		a.latency.Observe(time.Since(start).Seconds())
		if outcome == "unavailable" {
			a.lastOK.markFailed(time.Now())
		} else {
			a.lastOK.mark(time.Now())
		}
	}
	return g, err
}

func authOutcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, djangoclient.ErrInvalidCredentials):
		return "invalid_credentials"
	case errors.Is(err, djangoclient.ErrRejected):
		return "rejected"
	case errors.Is(err, djangoclient.ErrBadGrant):
		return "bad_grant"
	default:
		return "unavailable"
	}
}

// registerEventMetrics exports the event queue's state.
func registerEventMetrics(reg prometheus.Registerer, q *djangoclient.EventQueue) {
	reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "djftpd", Name: "event_queue_depth", Help: "Events waiting in memory for delivery to Django.",
		}, func() float64 { return float64(q.Stats().Queued) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: "djftpd", Name: "event_spool_bytes", Help: "Size of the on-disk event spool.",
		}, func() float64 { return float64(q.Stats().SpoolBytes) }),
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
