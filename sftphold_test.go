package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"
	"testing"
	"time"
)

// TestHoldSFTPSidecar is a measuring harness, not a test: with DJFTPD_HOLD_ADDR_FILE set it
// runs the whole sidecar (serve) with SFTP on against fakeDjango (alice, password "pw";
// events accepted and dropped), INFO text logs on stderr like the sidecar's, writes the SFTP
// address to that file and serves for DJFTPD_HOLD_FOR (default 10m) from the homes under
// DJFTPD_HOLD_ROOT (default a temporary directory), so that ftpbench
// sftp-idle can hold sessions from another process while /proc/<pid>/status shows this
// process's RSS alone (bench/README.md, SFTP section). With DJFTPD_HOLD_HEAP set, every
// allocation is sampled and SIGUSR1 writes a heap profile there, the goroutines' stacks
// grouped with their counts to .goroutine and MemStats to .txt.
func TestHoldSFTPSidecar(t *testing.T) {
	addrFile := os.Getenv("DJFTPD_HOLD_ADDR_FILE")
	if addrFile == "" {
		t.Skip("a measuring harness: set DJFTPD_HOLD_ADDR_FILE (bench/README.md)")
	}
	hold, err := time.ParseDuration(os.Getenv("DJFTPD_HOLD_FOR"))
	if err != nil {
		hold = 10 * time.Minute
	}
	heap := os.Getenv("DJFTPD_HOLD_HEAP")
	if heap != "" {
		runtime.MemProfileRate = 1 // every allocation: per-session bytes by owner, exactly
	}
	root := os.Getenv("DJFTPD_HOLD_ROOT") // the homes' root (alice's home is alice/ in it)
	if root == "" {
		root = t.TempDir()
	}
	if err := os.MkdirAll(filepath.Join(root, "alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	django := fakeDjango(t, filepath.Join(root, "alice"))
	sftpAddr := freeAddr(t)
	setEnv(t, map[string]string{
		"DJFTPD_DJANGO_URL": django.URL + "/ftp/", "DJFTPD_HOME_ROOT": root,
		"DJFTPD_LISTEN": "127.0.0.1:0", "DJFTPD_OPS_LISTEN": "127.0.0.1:0",
		"DJFTPD_PASSIVE_PORTS": "1024-65535", "DJFTPD_SFTP_LISTEN": sftpAddr,
		"DJFTPD_STATE_DIR": t.TempDir(), "DJFTPD_SPOOL_DIR": t.TempDir(), "DJFTPD_CACHE_TTL": "1h",
		"DJFTPD_MAX_CONNECTIONS": "0", "DJFTPD_MAX_CONNECTIONS_PER_IP": "0",
	})
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, cancel := context.WithTimeout(context.Background(), hold)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, log, func(_, _ net.Addr) {
			if err := os.WriteFile(addrFile, []byte(sftpAddr), 0o600); err != nil {
				log.Error("hold: address file", "err", err)
			}
		})
	}()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			return
		case <-usr1:
			if err := writeHoldProfiles(heap); err != nil {
				t.Error(err)
			}
		}
	}
}

// writeHoldProfiles writes the heap profile (after a GC), the goroutines and MemStats.
func writeHoldProfiles(path string) error {
	if path == "" {
		return nil
	}
	runtime.GC()
	for name, debug := range map[string]int{"heap": 0, "goroutine": 1} {
		file := path
		if name == "goroutine" {
			file += ".goroutine"
		}
		f, err := os.Create(file)
		if err != nil {
			return fmt.Errorf("hold profile: %w", err)
		}
		err = pprof.Lookup(name).WriteTo(f, debug)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("hold profile %s: %w", name, err)
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	txt := fmt.Sprintf("HeapInuse %d\nHeapAlloc %d\nStackInuse %d\nSys %d\nNumGoroutine %d\n",
		m.HeapInuse, m.HeapAlloc, m.StackInuse, m.Sys, runtime.NumGoroutine())
	return os.WriteFile(path+".txt", []byte(txt), 0o600)
}
