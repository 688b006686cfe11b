package ftpdriver

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPasswordsNeverLogged: at DEBUG, with every command traced, no password appears.
func TestPasswordsNeverLogged(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := newTestServerLog(t, log)
	rc := ts.dial(t)
	rc.cmd("USER alice")
	rc.cmd("PASS wrong-Pa55word")
	rc.login("alice", "alice-pw")
	rc.cmd("QUIT")
	time.Sleep(100 * time.Millisecond)
	out := logs.String()
	if !strings.Contains(out, "cmd=PASS") {
		t.Fatalf("PASS not traced at DEBUG:\n%s", out)
	}
	for _, secret := range []string{"wrong-Pa55word", "alice-pw"} {
		if strings.Contains(out, secret) {
			t.Fatalf("a password is in the logs:\n%s", out)
		}
	}
}

// TestFloodFromOneAddressDoesNotStarveOthers: 2,000 silent connections from 127.0.0.1
// meet the per-address limit (421 at once) and cost a user on 127.0.0.2 nothing; a client
// dribbling one byte a second is closed at the login timeout.
func TestFloodFromOneAddressDoesNotStarveOthers(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) {
		c.MaxConnections, c.MaxConnectionsPerIP = 500, 20
		c.LoginTimeout = 2 * time.Second
	})
	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for range 2000 {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		flood = append(flood, c)
	}
	dribbler, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer dribbler.Close()
	dribbleDone := make(chan struct{})
	go func() {
		defer close(dribbleDone)
		for _, b := range []byte("USER alice\r\n") {
			if _, err := dribbler.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(time.Second)
		}
	}()

	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", ts.addr)
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	rc := &rawConn{t: t, c: c, tp: newTextproto(c)}
	defer c.Close()
	rc.expect(220)
	rc.login("alice", "alice-pw")
	if code, _ := rc.cmd("NOOP"); code != 200 {
		t.Fatalf("NOOP = %d", code)
	}
	refused := 0
	for _, fc := range flood[len(flood)-50:] {
		_ = fc.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 64)
		n, _ := fc.Read(buf)
		if strings.HasPrefix(string(buf[:n]), "421") {
			refused++
		}
	}
	if refused != 50 {
		t.Fatalf("%d of the last 50 flood connections got 421, want all", refused)
	}
	<-dribbleDone
	if _, err := dribbler.Write([]byte("x")); err == nil {
		_ = dribbler.SetReadDeadline(time.Now().Add(3 * time.Second))
		buf := make([]byte, 256)
		n, _ := dribbler.Read(buf)
		if !strings.Contains(string(buf[:n]), "421") {
			// The reply may already have been read by nobody; the connection must be gone.
			if _, err := dribbler.Read(buf); err == nil {
				t.Fatal("the dribbling client is still connected after the login timeout")
			}
		}
	}
}

// TestShutdownLetsTransfersFinish: Shutdown stops accepting at once, lets a running
// upload finish within the grace, then ends the session with 421.
func TestShutdownLetsTransfersFinish(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("STOR during-shutdown.txt"); err != nil {
		t.Fatal(err)
	}
	data := dial()
	rc.expect(150)
	_, _ = data.Write([]byte("first half, "))

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdownDone <- ts.srv.Shutdown(ctx)
	}()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ts.addr, time.Second)
		if err != nil {
			break // no longer accepting
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting after Shutdown")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, _ = data.Write([]byte("second half"))
	data.Close()
	rc.expect(226)
	rc.expect(421)
	if err := <-shutdownDone; err != nil {
		t.Fatal(err)
	}
}

// TestShutdownGraceExpires: a transfer still running at the end of the grace is cut.
func TestShutdownGraceExpires(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("STOR never-finished.txt"); err != nil {
		t.Fatal(err)
	}
	data := dial()
	rc.expect(150)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_ = data.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := data.Read(make([]byte, 1)); err == nil {
		t.Fatal("data connection still open after the grace")
	}
}
