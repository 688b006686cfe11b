package ftpdriver

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
)

// TestIPv6 serves on [::1]: EPSV and EPRT work, PASV (IPv4 only) says to use EPSV.
func TestIPv6(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	go func() { _ = ts.srv.Serve(context.Background(), ln) }()
	addr := ln.Addr().String()

	c, err := ftp.Dial(addr, ftp.DialWithTimeout(5*time.Second)) // EPSV
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	if err := c.Login("alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stor("v6.txt", strings.NewReader("over IPv6")); err != nil {
		t.Fatal(err)
	}
	if got := ts.auth.calls[len(ts.auth.calls)-1].ClientIP; got != "::1" {
		t.Fatalf("client_ip = %q", got)
	}

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	rc := &rawConn{t: t, c: conn, tp: newTextproto(conn)}
	rc.expect(220)
	rc.login("alice", "alice-pw")
	if code, _ := rc.cmd("PASV"); code != 425 {
		t.Fatalf("PASV on IPv6 = %d, want 425 (use EPSV)", code)
	}
	if code, _ := rc.cmd("EPRT |1|127.0.0.1|2000|"); code != 500 {
		t.Fatalf("EPRT to IPv4 from an IPv6 client = %d, want 500", code)
	}
	dl, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	if code, msg := rc.cmd("EPRT |2|::1|%d|", dl.Addr().(*net.TCPAddr).Port); code != 200 {
		t.Fatalf("EPRT = %d %s", code, msg)
	}
	if code, _ := rc.cmd("RETR v6.txt"); code != 150 {
		t.Fatalf("RETR = %d", code)
	}
	d, err := dl.Accept()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(d)
	d.Close()
	rc.expect(226)
	if string(b) != "over IPv6" {
		t.Fatalf("active IPv6 download = %q", b)
	}
}

// TestIPv6PublicHost: a node's IPv6 status.hostIP may be the announced address; PASV
// cannot carry it (425, use EPSV) and EPSV, which announces only a port, works.
func TestIPv6PublicHost(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.PublicHost = netip.MustParseAddr("2001:db8::7") })
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	if code, msg := rc.cmd("PASV"); code != 425 || !strings.Contains(msg, "EPSV") {
		t.Fatalf("PASV with an IPv6 public host = %d %q, want 425 naming EPSV", code, msg)
	}
	if code, msg := rc.cmd("EPSV"); code != 229 {
		t.Fatalf("EPSV = %d %q", code, msg)
	}
}
