//go:build unix

package ftpdriver

import (
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestControlKeepAliveOnlyFromFirstTransfer: a control connection opened through Listen
// starts without TCP keep-alive (4 setsockopt calls per login saved) and has it from
// its first transfer on, when it may be silent for as long as the transfer lasts.
func TestControlKeepAliveOnlyFromFirstTransfer(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	if got := ts.controlKeepAlive(t); got {
		t.Fatal("keep-alive on after login; want off until the first transfer")
	}
	if err := os.WriteFile(filepath.Join(ts.home, "f.txt"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, code := transferOn(t, ts, rc, "RETR f.txt", nil); code != 226 || string(got) != "x" {
		t.Fatalf("RETR = %d %q, want 226 \"x\"", code, got)
	}
	if got := ts.controlKeepAlive(t); !got {
		t.Fatal("keep-alive off after a transfer; want on")
	}
}

// controlKeepAlive is SO_KEEPALIVE of the server's side of its one session.
func (ts *testServer) controlKeepAlive(t *testing.T) bool {
	t.Helper()
	ts.srv.stateMu.RLock()
	var raw net.Conn
	for s := range ts.srv.sessions {
		raw = s.conn.raw
	}
	ts.srv.stateMu.RUnlock()
	sc, err := raw.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := sc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
	}); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v != 0
}
