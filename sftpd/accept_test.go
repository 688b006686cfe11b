package sftpd

import (
	"net"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/djftpd/djftpd/internal/acceptretry"
	"github.com/djftpd/djftpd/internal/acceptretry/acceptretrytest"
)

// TestAcceptSurvivesEMFILE: accept failing with EMFILE (too many open files) is waited
// out with a back-off and counted; the listener then serves again. Before, Serve returned
// the error and the SFTP listener was gone until a restart.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	t.Parallel()
	var counted atomic.Int64
	cfg := defaultConfig()
	cfg.AcceptError = func() { counted.Add(1) }
	ts := startServer(t, cfg, nil)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	ln := acceptretrytest.New(inner)
	start := time.Now()
	served := make(chan error, 1)
	go func() { served <- ts.srv.Serve(ln) }()

	for deadline := time.Now().Add(5 * time.Second); ln.Fails.Load() < 1; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no accept in 5 s")
		}
	}
	time.Sleep(200 * time.Millisecond) // long enough for a spin to show
	ln.Failing.Store(false)
	elapsed := time.Since(start)
	if fails, most := ln.Fails.Load(), acceptretry.MaxAccepts(elapsed); fails > int64(most) {
		t.Errorf("%d failed accepts in %v; a back-off allows at most %d", fails, elapsed, most)
	}
	select {
	case err := <-served:
		t.Fatalf("Serve returned %v after EMFILE", err)
	default:
	}

	c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{
		User: "alice", Auth: []ssh.AuthMethod{ssh.Password("pw")},
		HostKeyCallback: ssh.FixedHostKey(ts.hostKey), Timeout: 10 * time.Second,
	})
	must(t, err)
	c.Close()
	if counted.Load() < 1 {
		t.Error("failed accepts not counted")
	}
}
