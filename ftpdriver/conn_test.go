package ftpdriver

import (
	"net"
	"strings"
	"testing"
	"time"
)

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

func TestLineTooLongCloses(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.MaxLineLength = 128 })
	rc := ts.dial(t)
	code, _ := rc.cmd("USER %s", strings.Repeat("a", 200))
	if code != 500 {
		t.Fatalf("got %d, want 500", code)
	}
	if !rc.closed() {
		t.Fatal("connection still open after an overlong line")
	}
}
