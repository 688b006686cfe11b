package ftpdriver

import (
	"context"
	"testing"

	"github.com/djftpd/djftpd/internal/holdtest"
)

// TestHoldSidecar is a measuring harness, not a test: with DJFTPD_HOLD_ADDR_FILE set it
// serves the test server (instant authenticator, as a cache hit is; events recorded in
// memory, not sent) with INFO text logs on stderr like the sidecar's, writes its address
// to that file, and serves for DJFTPD_HOLD_FOR (default 10m), so that bench/cmd/ftpbench
// can drive it from another process while /proc/<pid>/stat counts this process's CPU
// alone. On SIGUSR1 it writes a heap profile and MemStats to DJFTPD_HOLD_HEAP(.txt)
// (internal/holdtest).
func TestHoldSidecar(t *testing.T) {
	h := holdtest.Start(t)
	ts := newTestServerLog(t, holdtest.Logger(), func(c *Config) { c.MaxConnections, c.MaxConnectionsPerIP = 0, 0 })
	if err := h.WriteAddr(ts.addr); err != nil {
		t.Fatal(err)
	}
	h.Wait(context.Background(), t)
}
