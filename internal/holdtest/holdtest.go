// Package holdtest is the common start of the measuring harnesses (TestHoldSidecar,
// TestHoldSFTP, TestHoldSFTPSidecar): each serves a server in a process of its own so
// that bench/cmd/ftpbench can drive it from another process while /proc/<pid> counts the
// server alone (bench/README.md). Imported by tests only.
package holdtest

import (
	"context"
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

// Hold is one harness run, configured from the environment.
type Hold struct {
	addrFile string        // DJFTPD_HOLD_ADDR_FILE: the server's address is written there
	hold     time.Duration // DJFTPD_HOLD_FOR (default 10m): how long to serve
	heap     string        // DJFTPD_HOLD_HEAP: SIGUSR1 writes the heap profile there
	cpu      string        // DJFTPD_HOLD_CPUPROFILE: CPU profile between SIGUSR1 and SIGUSR2
	cpuFile  *os.File
}

// Start skips t unless DJFTPD_HOLD_ADDR_FILE is set (a harness, not a test) and reads the
// other DJFTPD_HOLD_* variables. With DJFTPD_HOLD_HEAP set every allocation is sampled, so
// that per-session bytes by owner are exact.
func Start(t testing.TB) *Hold {
	t.Helper()
	h := &Hold{
		addrFile: os.Getenv("DJFTPD_HOLD_ADDR_FILE"),
		heap:     os.Getenv("DJFTPD_HOLD_HEAP"),
		cpu:      os.Getenv("DJFTPD_HOLD_CPUPROFILE"),
	}
	if h.addrFile == "" {
		t.Skip("a measuring harness: set DJFTPD_HOLD_ADDR_FILE (bench/README.md)")
	}
	var err error
	if h.hold, err = time.ParseDuration(os.Getenv("DJFTPD_HOLD_FOR")); err != nil {
		h.hold = 10 * time.Minute
	}
	if h.heap != "" {
		runtime.MemProfileRate = 1
	}
	return h
}

// For is how long the harness serves (DJFTPD_HOLD_FOR).
func (h *Hold) For() time.Duration { return h.hold }

// Logger logs INFO text to stderr, as the sidecar does.
func Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// WriteAddr writes the server's address to DJFTPD_HOLD_ADDR_FILE.
func (h *Hold) WriteAddr(addr string) error {
	if err := os.WriteFile(h.addrFile, []byte(addr), 0o600); err != nil {
		return fmt.Errorf("hold: address file: %w", err)
	}
	return nil
}

// Wait serves the profiling signals until DJFTPD_HOLD_FOR has passed, SIGINT or SIGTERM
// arrives, or ctx is done (a server that stopped by itself). SIGUSR1 writes the heap
// profiles (DJFTPD_HOLD_HEAP) and starts the CPU profile (DJFTPD_HOLD_CPUPROFILE), SIGUSR2
// stops it; a CPU profile still running is stopped on return.
func (h *Hold) Wait(ctx context.Context, t testing.TB) {
	t.Helper()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	defer h.stopCPU(t)
	end := time.After(h.hold)
	for {
		select {
		case <-end:
			return
		case <-ctx.Done():
			return
		case s := <-sig:
			switch s {
			case syscall.SIGUSR1:
				if err := writeHeap(h.heap); err != nil {
					t.Error(err)
				}
				h.startCPU(t)
			case syscall.SIGUSR2:
				h.stopCPU(t)
			default:
				return
			}
		}
	}
}

func (h *Hold) startCPU(t testing.TB) {
	if h.cpu == "" || h.cpuFile != nil {
		return
	}
	f, err := os.Create(h.cpu)
	if err != nil {
		t.Fatalf("hold: cpu profile: %v", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatalf("hold: cpu profile: %v", err)
	}
	h.cpuFile = f
}

func (h *Hold) stopCPU(t testing.TB) {
	if h.cpuFile == nil {
		return
	}
	pprof.StopCPUProfile()
	if err := h.cpuFile.Close(); err != nil {
		t.Errorf("hold: cpu profile: %v", err)
	}
	h.cpuFile = nil
}

// writeHeap writes the heap profile (after a GC) to path, the goroutines grouped by stack
// to path.goroutine and MemStats to path.txt; nothing when path is empty.
func writeHeap(path string) error {
	if path == "" {
		return nil
	}
	runtime.GC()
	for _, p := range []struct {
		name, file string
		debug      int
	}{{"heap", path, 0}, {"goroutine", path + ".goroutine", 1}} {
		f, err := os.Create(p.file)
		if err != nil {
			return fmt.Errorf("hold profile: %w", err)
		}
		err = pprof.Lookup(p.name).WriteTo(f, p.debug)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("hold profile %s: %w", p.name, err)
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	txt := fmt.Sprintf("HeapInuse %d\nHeapAlloc %d\nStackInuse %d\nSys %d\nNumGoroutine %d\n",
		m.HeapInuse, m.HeapAlloc, m.StackInuse, m.Sys, runtime.NumGoroutine())
	return os.WriteFile(path+".txt", []byte(txt), 0o600)
}
