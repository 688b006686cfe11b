package cache

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/djftpd/djftpd/djangoclient"
)

// Instrumented is the Authenticator the protocol front ends use: the cache, measured,
// and recording Django's health for readiness. A miss or a stale answer means Django
// was asked, so those count as auth requests.
type Instrumented struct {
	cache    *Cache
	lookups  *prometheus.CounterVec // result: hit, miss, stale, negative_hit
	requests *prometheus.CounterVec // outcome
	latency  prometheus.Histogram
	health   Health
	// lookupBy is lookups' counter of each Result, resolved once: WithLabelValues hashes
	// the label and takes the vector's lock at every login.
	lookupBy map[Result]prometheus.Counter
}

// NewInstrumented measures c into reg (djftpd_auth_cache_lookups_total,
// djftpd_auth_requests_total, djftpd_auth_request_duration_seconds).
func NewInstrumented(c *Cache, reg prometheus.Registerer) *Instrumented {
	a := &Instrumented{
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
	}
	reg.MustRegister(a.lookups, a.requests, a.latency)
	a.lookupBy = make(map[Result]prometheus.Counter)
	for _, r := range []Result{ResultHit, ResultMiss, ResultStale, ResultNegativeHit} {
		a.lookupBy[r] = a.lookups.WithLabelValues(string(r))
	}
	for _, o := range []string{"ok", "invalid_credentials", "rejected", "bad_grant", "unavailable"} {
		a.requests.WithLabelValues(o)
	}
	return a
}

// Health is how Django has been answering the logins through a.
func (a *Instrumented) Health() *Health { return &a.health }

// Purge and PurgeAll forget cached logins (the ops endpoint /cache/purge).
func (a *Instrumented) Purge(username string) { a.cache.Purge(username) }
func (a *Instrumented) PurgeAll()             { a.cache.PurgeAll() }

// Authenticate implements the front ends' Authenticator.
func (a *Instrumented) Authenticate(ctx context.Context, r djangoclient.AuthRequest) (djangoclient.Grant, error) {
	start := time.Now()
	g, res, err := a.cache.AuthenticateWithResult(ctx, r)
	if c, ok := a.lookupBy[res]; ok {
		c.Inc()
	} else {
		a.lookups.WithLabelValues(string(res)).Inc()
	}
	if res == ResultMiss || res == ResultStale {
		outcome := requestOutcome(err)
		if res == ResultStale {
			outcome = "unavailable" // Django failed; the stale answer covered for it
		}
		a.requests.WithLabelValues(outcome).Inc()
		a.latency.Observe(time.Since(start).Seconds())
		if outcome == "unavailable" {
			a.health.MarkFailed(time.Now())
		} else {
			a.health.Mark(time.Now())
		}
	}
	return g, err
}

// requestOutcome is the djftpd_auth_requests_total label of one call to Django.
func requestOutcome(err error) string {
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

// HealthStale is how long after Django's last answer Health still trusts it; past it,
// Healthy is false only if a call failed since (an idle sidecar with a healthy Django
// stays ready).
const HealthStale = 5 * time.Minute

// Health records when Django last answered (any verified answer) and when a call last
// failed. The zero value is healthy.
type Health struct {
	ok, failed atomic.Int64 // unix nanoseconds
}

// Mark records an answer from Django at t; MarkFailed a failed call.
func (h *Health) Mark(t time.Time)       { h.ok.Store(t.UnixNano()) }
func (h *Health) MarkFailed(t time.Time) { h.failed.Store(t.UnixNano()) }

// Healthy: no failure since the last answer, or the last answer is recent.
func (h *Health) Healthy(now time.Time) bool {
	ok, failed := h.ok.Load(), h.failed.Load()
	return failed <= ok || now.UnixNano()-ok < int64(HealthStale)
}
