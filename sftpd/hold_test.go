package sftpd

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/djftpd/djftpd/internal/holdtest"
)

// TestHoldSFTP is a measuring harness, not a test: with DJFTPD_HOLD_ADDR_FILE set it serves
// SFTP (the test gate: alice, password "pw", instant as a cache hit is; events kept in
// memory, not sent) over DJFTPD_HOLD_HOME (default: the test fixture), writes its address to
// that file and serves for DJFTPD_HOLD_FOR (default 10m) or until SIGINT/SIGTERM, so that
// bench/cmd/ftpbench can drive it from another process while /proc/<pid>/stat counts this
// process's CPU alone. With DJFTPD_HOLD_CPUPROFILE set, SIGUSR1 starts a CPU profile into
// that file and SIGUSR2 stops it (bench/README.md, SFTP section; internal/holdtest).
func TestHoldSFTP(t *testing.T) {
	h := holdtest.Start(t)
	cfg := defaultConfig()
	cfg.IdleTimeout = 5 * time.Minute // the sidecar's default DJFTPD_IDLE_TIMEOUT
	ts := startServer(t, cfg, func(g *testGate) {
		if home := os.Getenv("DJFTPD_HOLD_HOME"); home != "" {
			g.home = home
		}
	})
	must(t, h.WriteAddr(ts.addr))
	h.Wait(context.Background(), t)
}
