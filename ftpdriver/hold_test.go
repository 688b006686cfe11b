package ftpdriver

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"
)

// TestHoldSidecar is a measuring harness, not a test: with DJFTPD_HOLD_ADDR_FILE set it
// serves the test server (instant authenticator, as a cache hit is; events recorded in
// memory, not sent) with INFO text logs on stderr like the sidecar's, writes its address
// to that file, and serves for DJFTPD_HOLD_FOR (default 10m), so that bench/cmd/ftpbench
// can drive it from another process while /proc/<pid>/stat counts this process's CPU
// alone. On SIGUSR1 it writes a heap profile and MemStats to DJFTPD_HOLD_HEAP(.txt).
func TestHoldSidecar(t *testing.T) {
	addrFile := os.Getenv("DJFTPD_HOLD_ADDR_FILE")
	if addrFile == "" {
		t.Skip("a measuring harness: set DJFTPD_HOLD_ADDR_FILE (bench/README.md)")
	}
	hold, err := time.ParseDuration(os.Getenv("DJFTPD_HOLD_FOR"))
	if err != nil {
		hold = 10 * time.Minute
	}
	if os.Getenv("DJFTPD_HOLD_HEAP") != "" {
		runtime.MemProfileRate = 1 // every allocation: per-session bytes by owner, exactly
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ts := newTestServerLog(t, log, func(c *Config) { c.MaxConnections, c.MaxConnectionsPerIP = 0, 0 })
	if err := os.WriteFile(addrFile, []byte(ts.addr), 0o600); err != nil {
		t.Fatal(err)
	}
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	end := time.After(hold)
	for {
		select {
		case <-end:
			return
		case <-usr1:
			writeHeap(t, os.Getenv("DJFTPD_HOLD_HEAP"))
		}
	}
}

func writeHeap(t *testing.T, path string) {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		t.Fatal(err)
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	txt := fmt.Sprintf("HeapInuse %d\nHeapAlloc %d\nStackInuse %d\nSys %d\nNumGoroutine %d\n",
		m.HeapInuse, m.HeapAlloc, m.StackInuse, m.Sys, runtime.NumGoroutine())
	if err := os.WriteFile(path+".txt", []byte(txt), 0o600); err != nil {
		t.Fatal(err)
	}
}
