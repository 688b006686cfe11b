package ftpdriver

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

func TestMaxConnectionsPerIP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.MaxConnectionsPerIP = 2 })
	a, b := ts.dial(t), ts.dial(t)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc := &rawConn{t: t, c: c, tp: newTextproto(c)}
	if code, msg := rc.read(); code != 421 || !strings.Contains(msg, "your address") {
		t.Fatalf("third connection = %d %q, want 421", code, msg)
	}
	a.cmd("QUIT")
	_ = b
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		rc := &rawConn{t: t, c: c, tp: newTextproto(c)}
		code, _ := rc.read()
		c.Close()
		if code == 220 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection was not released")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMaxConnectionsTotal(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.MaxConnections = 1 })
	ts.dial(t)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	rc := &rawConn{t: t, c: c, tp: newTextproto(c)}
	if code, _ := rc.read(); code != 421 {
		t.Fatalf("second connection = %d, want 421", code)
	}
}

// TestBanAfterFailedLogins: repeated wrong passwords ban the address; server faults
// never count.
func TestBanAfterFailedLogins(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) {
		c.BanThreshold, c.BanWindow, c.BanTime = 3, time.Minute, time.Minute
		c.MaxLoginAttempts = 10
	})
	rc := ts.dial(t)
	for range 3 {
		rc.cmd("USER alice")
		rc.cmd("PASS wrong")
	}
	if !rc.closed() {
		t.Fatal("the banned session stays open")
	}
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	banned := &rawConn{t: t, c: c, tp: newTextproto(c)}
	if code, msg := banned.read(); code != 421 || !strings.Contains(msg, "failed logins") {
		t.Fatalf("banned address got %d %q", code, msg)
	}
}

func TestServerFaultsNeverBan(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.BanThreshold, c.BanWindow, c.BanTime = 1, time.Minute, time.Minute })
	ts.auth.err = fmt.Errorf("down: %w", errTooManyConns) // anything but invalid credentials
	rc := ts.dial(t)
	rc.cmd("USER alice")
	if code, _ := rc.cmd("PASS alice-pw"); code != 421 {
		t.Fatalf("got %d", code)
	}
	ts.auth.mu.Lock()
	ts.auth.err = nil
	ts.auth.mu.Unlock()
	ts.dial(t).login("alice", "alice-pw")
}

func TestMaxSessionsPerUser(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	one := 1
	g := ts.auth.grants["alice:alice-pw"]
	g.MaxSessions = &one
	ts.auth.grants["alice:alice-pw"] = g
	first := ts.dial(t)
	first.login("alice", "alice-pw")
	second := ts.dial(t)
	second.cmd("USER alice")
	if code, msg := second.cmd("PASS alice-pw"); code != 421 || !strings.Contains(msg, "sessions") {
		t.Fatalf("second session = %d %q, want 421", code, msg)
	}
	first.cmd("QUIT")
	deadline := time.Now().Add(3 * time.Second)
	for {
		rc := ts.dial(t)
		rc.cmd("USER alice")
		if code, _ := rc.cmd("PASS alice-pw"); code == 230 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first session's slot was not released")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestProxyProtocol: the PROXY header's source is the client for every rule and is
// what Django is told; a connection without a header is closed.
func TestProxyProtocol(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, trustLoopback1)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "PROXY TCP4 203.0.113.9 127.0.0.1 40000 21\r\n")
	rc := &rawConn{t: t, c: c, tp: newTextproto(c)}
	rc.expect(220)
	rc.login("alice", "alice-pw")
	if got := ts.auth.calls[len(ts.auth.calls)-1].ClientIP; got != "203.0.113.9" {
		t.Fatalf("client_ip sent to Django = %q", got)
	}
	// Passive data connections come through the proxy (here: from 127.0.0.1), with a
	// header naming the session's client.
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("LIST"); err != nil {
		t.Fatal(err)
	}
	data := dial()
	fmt.Fprintf(data, "PROXY TCP4 203.0.113.9 127.0.0.1 40000 30000\r\n")
	rc.expect(150)
	data.Close()
	rc.expect(226)

	bare, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	fmt.Fprintf(bare, "USER alice\r\n")
	_ = bare.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := bare.Read(make([]byte, 64)); err == nil || n > 0 {
		t.Fatal("a connection without PROXY header was served")
	}
}

// TestHalfOpenConnectionsDoNotStarve: hundreds of silent connections cost a logged-in
// user nothing; each is closed at the login timeout.
func TestHalfOpenConnectionsDoNotStarve(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.LoginTimeout = 2 * time.Second })
	var idle []net.Conn
	for range 500 {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		idle = append(idle, c)
	}
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	c := ts.client(t, "alice", "alice-pw")
	if err := c.Stor("ok.txt", strings.NewReader("still served")); err != nil {
		t.Fatal(err)
	}
	_ = idle[0].SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 256)
	var got string
	for {
		n, err := idle[0].Read(buf)
		got += string(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(got, "421") {
		t.Fatalf("a silent connection got %q, want 421 at the login timeout", got)
	}
}
