package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/djftpd/djftpd/internal/holdtest"
)

// TestHoldSFTPSidecar is a measuring harness, not a test: with DJFTPD_HOLD_ADDR_FILE set it
// runs the whole sidecar (serve) with SFTP on against fakeDjango (alice, password "pw";
// events accepted and dropped), INFO text logs on stderr like the sidecar's, writes the SFTP
// address to that file and serves for DJFTPD_HOLD_FOR (default 10m) from the homes under
// DJFTPD_HOLD_ROOT (default a temporary directory), so that ftpbench
// sftp-idle can hold sessions from another process while /proc/<pid>/status shows this
// process's RSS alone (bench/README.md, SFTP section). With DJFTPD_HOLD_HEAP set, every
// allocation is sampled and SIGUSR1 writes a heap profile there, the goroutines' stacks
// grouped with their counts to .goroutine and MemStats to .txt (internal/holdtest).
func TestHoldSFTPSidecar(t *testing.T) {
	h := holdtest.Start(t)
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
	log := holdtest.Logger()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer cancel() // a sidecar that stopped by itself ends the hold
		done <- serve(ctx, cfg, log, func(_, _ net.Addr) {
			if err := h.WriteAddr(sftpAddr); err != nil {
				log.Error("hold: address file", "err", err)
			}
		})
	}()
	h.Wait(ctx, t)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
