package ftpdriver

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the FTP front end's Prometheus collectors: namespace djftpd, base
// units, _total on counters, and every label value created at start so each series
// exists from the first scrape.
type Metrics struct {
	sessions          prometheus.Gauge
	connsRefused      *prometheus.CounterVec // reason
	logins            *prometheus.CounterVec // result
	transferBytes     *prometheus.CounterVec // direction
	transfers         *prometheus.CounterVec // direction, result
	transferDurations *prometheus.HistogramVec
	sessionsClosed    *prometheus.CounterVec // reason
	acceptErrors      *prometheus.CounterVec // listener
}

// NewMetrics creates the collectors and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessions: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "djftpd", Name: "sessions", Help: "Open FTP control connections and SFTP connections.",
		}),
		connsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "connections_refused_total",
			Help: "Control connections refused at connect, by reason.",
		}, []string{"reason"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "logins_total", Help: "Login attempts by result, FTP and SFTP.",
		}, []string{"result"}),
		transferBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "transfer_bytes_total",
			Help: "Bytes moved over data connections, by direction (download, upload, listing).",
		}, []string{"direction"}),
		transfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "transfers_total", Help: "Transfers by direction and result.",
		}, []string{"direction", "result"}),
		transferDurations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "djftpd", Name: "transfer_duration_seconds", Help: "Duration of transfers.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}, []string{"direction"}),
		sessionsClosed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "sessions_closed_total",
			Help: "Sessions ended by the server, by reason (admin: POST /sessions/close).",
		}, []string{"reason"}),
		acceptErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "djftpd", Name: "accept_errors_total",
			Help: "Failed accepts waited out (out of file descriptors, buffers or memory), by listener.",
		}, []string{"listener"}),
	}
	reg.MustRegister(m.sessions, m.connsRefused, m.logins, m.transferBytes, m.transfers, m.transferDurations,
		m.sessionsClosed, m.acceptErrors)
	m.sessionsClosed.WithLabelValues("admin")
	for _, l := range []string{"ftp", "ftps", "sftp"} {
		m.acceptErrors.WithLabelValues(l)
	}
	for _, r := range []string{"ok", "invalid_credentials", "unavailable", "rejected"} {
		m.logins.WithLabelValues(r)
	}
	for _, r := range []string{"banned", "too_many_connections", "too_many_from_address", "shutting_down", "bad_proxy_header", "untrusted_peer"} {
		m.connsRefused.WithLabelValues(r)
	}
	return m
}

// Login counts another front end's login (SFTP) in djftpd_logins_total, labelled as FTP's
// are, so one series counts both protocols.
func (m *Metrics) Login(err error) { m.logins.WithLabelValues(loginResult(err)).Inc() }

// Connected and Disconnected count another front end's connection (SFTP) in djftpd_sessions.
func (m *Metrics) Connected()    { m.sessions.Inc() }
func (m *Metrics) Disconnected() { m.sessions.Dec() }

// AcceptError counts a failed accept that is waited out on listener (ftp, ftps, sftp)
// in djftpd_accept_errors_total.
func (m *Metrics) AcceptError(listener string) { m.acceptErrors.WithLabelValues(listener).Inc() }

// refusalReason is the djftpd_connections_refused_total label of a refusal at connect.
func refusalReason(err error) string {
	return rowOr(err, rowOf(errShuttingDown)).label
}

// direction names a transfer command's direction label.
func direction(cmd string) string {
	switch cmd {
	case "RETR":
		return "download"
	case "STOR", "APPE", "STOU":
		return "upload"
	default:
		return "listing"
	}
}

func (m *Metrics) transfer(cmd string, n int64, d time.Duration, err error) {
	dir := direction(cmd)
	result := "complete"
	if err != nil {
		result = "incomplete"
	}
	m.transferBytes.WithLabelValues(dir).Add(float64(n))
	m.transfers.WithLabelValues(dir, result).Inc()
	m.transferDurations.WithLabelValues(dir).Observe(d.Seconds())
}
