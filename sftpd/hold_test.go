package sftpd

import (
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"
)

// TestHoldSFTP is a measuring harness, not a test: with DJFTPD_HOLD_ADDR_FILE set it serves
// SFTP (the test gate: alice, password "pw", instant as a cache hit is; events kept in
// memory, not sent) over DJFTPD_HOLD_HOME (default: the test fixture), writes its address to
// that file and serves for DJFTPD_HOLD_FOR (default 10m) or until SIGINT/SIGTERM, so that
// bench/cmd/ftpbench can drive it from another process while /proc/<pid>/stat counts this
// process's CPU alone. With DJFTPD_HOLD_CPUPROFILE set, SIGUSR1 starts a CPU profile into
// that file and SIGUSR2 stops it (bench/README.md, SFTP section).
func TestHoldSFTP(t *testing.T) {
	addrFile := os.Getenv("DJFTPD_HOLD_ADDR_FILE")
	if addrFile == "" {
		t.Skip("a measuring harness: set DJFTPD_HOLD_ADDR_FILE (bench/README.md)")
	}
	hold, err := time.ParseDuration(os.Getenv("DJFTPD_HOLD_FOR"))
	if err != nil {
		hold = 10 * time.Minute
	}
	cfg := defaultConfig()
	cfg.IdleTimeout = 5 * time.Minute // the sidecar's default DJFTPD_IDLE_TIMEOUT
	ts := startServer(t, cfg, func(g *testGate) {
		if h := os.Getenv("DJFTPD_HOLD_HOME"); h != "" {
			g.home = h
		}
	})
	must(t, os.WriteFile(addrFile, []byte(ts.addr), 0o600))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	prof := &holdProfile{path: os.Getenv("DJFTPD_HOLD_CPUPROFILE")}
	defer prof.stop(t)
	end := time.After(hold)
	for {
		select {
		case <-end:
			return
		case s := <-sig:
			switch s {
			case syscall.SIGUSR1:
				prof.start(t)
			case syscall.SIGUSR2:
				prof.stop(t)
			default:
				return
			}
		}
	}
}

// holdProfile is TestHoldSFTP's CPU profile, on between SIGUSR1 and SIGUSR2.
type holdProfile struct {
	path string
	f    *os.File
}

func (p *holdProfile) start(t *testing.T) {
	if p.path == "" || p.f != nil {
		return
	}
	f, err := os.Create(p.path)
	must(t, err)
	must(t, pprof.StartCPUProfile(f))
	p.f = f
}

func (p *holdProfile) stop(t *testing.T) {
	if p.f == nil {
		return
	}
	pprof.StopCPUProfile()
	must(t, p.f.Close())
	p.f = nil
}
