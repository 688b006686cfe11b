package ftpdriver

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count fds: %v", err)
	}
	return len(ents)
}

// TestSilentConnectionsReleased: connections that never send a byte, to the implicit
// FTPS listener (no ClientHello) and to the plain one over the per-IP limit, are
// closed by the server within the handshake and login deadlines; its goroutines and
// fds return to where they were (issue 12 item 3: before, each implicit connection
// held a goroutine and an fd for ever). Not parallel: it counts the whole process.
func TestSilentConnectionsReleased(t *testing.T) {
	ts, _, _ := newTLSServer(t, TLSImplicit, func(c *Config) {
		c.TLSHandshakeTimeout = 500 * time.Millisecond
		c.LoginTimeout = time.Second
		c.MaxConnectionsPerIP = 5
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ts.srv.ServeImplicit(t.Context(), ln) }()
	// One served connection first, so the accept loops run before the base count.
	c, err := tls.Dial("tcp", ln.Addr().String(), clientTLS())
	if err != nil {
		t.Fatal(err)
	}
	rc := &rawConn{t: t, c: c, tp: newTextproto(c)}
	rc.expect(220)
	rc.cmd("QUIT")
	c.Close()
	time.Sleep(100 * time.Millisecond)
	baseG, baseFD := runtime.NumGoroutine(), openFDs(t)

	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range 150 {
		for _, addr := range []string{ln.Addr().String(), ts.addr} {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			conns = append(conns, c)
		}
	}
	// The client keeps its end open: only the server's deadlines can end these.
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("connection %d (%s) not closed by the server: %v", i, c.RemoteAddr(), err)
		}
	}
	const slack = 10
	var g, fds int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		g, fds = runtime.NumGoroutine(), openFDs(t)
		if g <= baseG+slack && fds <= baseFD+len(conns)+slack {
			return
		}
	}
	t.Fatalf("goroutines %d (base %d), fds %d (base %d + %d client ends)", g, baseG, fds, baseFD, len(conns))
}

// TestAUTHTLSInjection: plain-text commands sent behind AUTH TLS, in the same packet,
// are never run as if they came over TLS (issue 12 item 7, RFC 7457 §2.2). In
// required mode they used to log in.
func TestAUTHTLSInjection(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTLSServer(t, TLSRequired)
	rc := ts.dial(t)
	fmt.Fprint(rc.c, "AUTH TLS\r\nUSER alice\r\nPASS alice-pw\r\n")
	code, msg := rc.read()
	if code == 234 {
		tc := tls.Client(rc.c, clientTLS())
		if err := tc.Handshake(); err == nil {
			_ = tc.SetReadDeadline(time.Now().Add(3 * time.Second))
			b, _ := io.ReadAll(tc)
			t.Fatalf("after the handshake the server ran the injected commands: %q", b)
		}
	} else if code != 421 {
		t.Fatalf("AUTH TLS with data behind it = %d %s, want 421", code, msg)
	}
	if !rc.closed() {
		t.Fatal("connection left open")
	}
	if n := ts.authCalls(); n != 0 {
		t.Fatalf("%d injected logins reached Django", n)
	}
}

// TestPipelinedCommandsStillServed: commands sent together are each answered.
func TestPipelinedCommandsStillServed(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTLSServer(t, TLSExplicit)
	rc := ts.dial(t)
	fmt.Fprint(rc.c, "NOOP\r\nSYST\r\nNOOP\r\n")
	for _, want := range []int{200, 215, 200} {
		rc.expect(want)
	}
	if code, _ := rc.cmd("AUTH TLS"); code != 234 {
		t.Fatalf("AUTH TLS alone = %d", code)
	}
}
