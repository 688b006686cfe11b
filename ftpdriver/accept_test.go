package ftpdriver

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/djftpd/djftpd/internal/acceptretry"
	"github.com/djftpd/djftpd/internal/acceptretry/acceptretrytest"
)

// TestAcceptSurvivesEMFILE: accept failing with EMFILE (too many open files) is waited
// out with a back-off in djftpd's accept loop, on every listener kind. Before, the PROXY
// and implicit FTPS loop kept the error and handed it to goftp forever (the listener
// dead, a core spinning), and the plain listener returned it to goftp, which retried at
// once (a core spinning until descriptors came back).
func TestAcceptSurvivesEMFILE(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		implicit bool
		proxy    bool
	}{
		{"plain", false, false},
		{"proxy", false, true},
		{"implicit TLS", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			logs := &lockedBuffer{}
			log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			ts := newTestServerLog(t, log, func(c *Config) {
				if tt.proxy {
					trustLoopback1(c)
				}
				if tt.implicit {
					certFile, keyFile := writeTestCert(t, t.TempDir(), "first")
					r, err := NewCertReloader(certFile, keyFile)
					if err != nil {
						t.Fatal(err)
					}
					c.TLSMode, c.TLS = TLSImplicit, r.TLSConfig()
				}
			})
			inner, err := Listen(t.Context(), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := acceptretrytest.New(inner)
			start := time.Now()
			serve := ts.srv.Serve
			if tt.implicit {
				serve = ts.srv.ServeImplicit
			}
			go func() { _ = serve(t.Context(), ln) }()

			waitFor(t, "a failed accept", func() bool { return ln.Fails.Load() >= 1 })
			time.Sleep(200 * time.Millisecond) // long enough for a spin to show
			ln.Failing.Store(false)
			elapsed := time.Since(start)
			if fails, most := ln.Fails.Load(), acceptretry.MaxAccepts(elapsed); fails > int64(most) {
				t.Errorf("%d failed accepts in %v; a back-off allows at most %d", fails, elapsed, most)
			}

			c := dialFrom(t, "127.0.0.1", ln.Addr().String())
			if tt.proxy {
				fmt.Fprintf(c, "PROXY TCP4 127.0.0.9 127.0.0.1 40000 21\r\n")
			}
			if tt.implicit {
				c = tls.Client(c, clientTLS())
			}
			rc := &rawConn{t: t, c: c, tp: newTextproto(c)}
			rc.expect(220) // the listener lives on
			if got := acceptErrorCount(t, ts, map[bool]string{false: "ftp", true: "ftps"}[tt.implicit]); got < 1 {
				t.Errorf("djftpd_accept_errors_total = %v, want ≥ 1", got)
			}
			// One WARN line, not one per failure (at most one a second).
			if n := strings.Count(logs.String(), "accept failed"); n < 1 || n > int(elapsed/time.Second)+1 {
				t.Errorf("%d WARN lines for %d failures in %v:\n%s", n, ln.Fails.Load(), elapsed, logs)
			}
		})
	}
}

func acceptErrorCount(t *testing.T, ts *testServer, listener string) float64 {
	t.Helper()
	var m dto.Metric
	if err := ts.srv.cfg.Metrics.acceptErrors.WithLabelValues(listener).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
