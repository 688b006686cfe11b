package ftpdriver

import (
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/djftpd/djftpd/internal/proxyproto"
)

// Loopback is 127.0.0.0/8: dialling from 127.0.0.2, 127.0.0.3, ... plays other peers.
// The balancer is 127.0.0.1 in these tests.

var trustLoopback1 = func(c *Config) {
	c.ProxyProtocol = true
	c.ProxyTrusted = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

// dialFrom connects to addr from the loopback address from.
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s: %v", from, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// closedUnanswered reports whether the server closed c without sending a byte.
func closedUnanswered(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := io.ReadAll(c)
	if len(b) > 0 {
		t.Logf("server sent %q", b)
	}
	return len(b) == 0 && !isTimeout(err)
}

func refusedCount(t *testing.T, ts *testServer, reason string) float64 {
	t.Helper()
	var m dto.Metric
	if err := ts.srv.cfg.Metrics.connsRefused.WithLabelValues(reason).Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func (ts *testServer) authCalls() int {
	ts.auth.mu.Lock()
	defer ts.auth.mu.Unlock()
	return len(ts.auth.calls)
}

// TestProxyHeaderFromUntrustedPeer: a peer outside DJFTPD_PROXY_TRUSTED cannot name
// another address (issue 12 item 1: the address drove the bounce check, bans, limits
// and Django's client_ip). It is closed before the greeting, unread, and counted.
func TestProxyHeaderFromUntrustedPeer(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	ts := newTestServerLog(t, slog.New(slog.NewTextHandler(&logs, nil)), trustLoopback1)
	c := dialFrom(t, "127.0.0.2", ts.addr)
	fmt.Fprintf(c, "PROXY TCP4 127.0.0.9 127.0.0.1 40000 21\r\nUSER alice\r\nPASS alice-pw\r\nEPRT |1|127.0.0.9|2000|\r\n")
	if !closedUnanswered(t, c) {
		t.Fatal("a PROXY header from an untrusted peer was served")
	}
	if n := ts.authCalls(); n != 0 {
		t.Fatalf("%d logins reached Django", n)
	}
	if got := refusedCount(t, ts, "untrusted_peer"); got != 1 {
		t.Fatalf("connections_refused_total{reason=untrusted_peer} = %v, want 1", got)
	}

	// Without a header too: with PROXY on, the port is the balancer's alone.
	bare := dialFrom(t, "127.0.0.2", ts.addr)
	if !closedUnanswered(t, bare) {
		t.Fatal("a direct connection from an untrusted peer was served")
	}
	// Both were logged at WARN, the second one folded into the next line (1 s bound).
	if n := strings.Count(logs.String(), "PROXY trust rule"); n != 1 {
		t.Fatalf("%d WARN lines for two refusals within a second, want 1:\n%s", n, logs.String())
	}
}

// TestProxyTrustedPeerWithoutHeader: the balancer's connections must carry a header.
func TestProxyTrustedPeerWithoutHeader(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, trustLoopback1)
	c := dialFrom(t, "127.0.0.1", ts.addr)
	fmt.Fprintf(c, "USER alice\r\nPASS alice-pw\r\n")
	if !closedUnanswered(t, c) {
		t.Fatal("a connection from the balancer without a header was served")
	}
	if got := refusedCount(t, ts, "bad_proxy_header"); got != 1 {
		t.Fatalf("connections_refused_total{reason=bad_proxy_header} = %v, want 1", got)
	}
}

// TestProxyLineWithoutProxyProtocol: with PROXY off a "PROXY" line is an unknown
// command, never a header.
func TestProxyLineWithoutProxyProtocol(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	if code, _ := rc.cmd("PROXY TCP4 127.0.0.9 127.0.0.1 40000 21"); code != 500 {
		t.Fatalf("PROXY line = %d, want 500", code)
	}
	rc.login("alice", "alice-pw")
	if got := ts.auth.calls[0].ClientIP; got != "127.0.0.1" {
		t.Fatalf("client_ip = %q, want the real 127.0.0.1", got)
	}
	if code, _ := rc.cmd("EPRT |1|127.0.0.9|2000|"); code != 500 {
		t.Fatalf("EPRT to the named address = %d, want 500 (bounce)", code)
	}
}

// TestProxyImplicitTLS: the same rules on the implicit FTPS listener; the header
// comes before the ClientHello.
func TestProxyImplicitTLS(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTLSServer(t, TLSImplicit, trustLoopback1)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ts.srv.ServeImplicit(t.Context(), ln) }()

	spoof := dialFrom(t, "127.0.0.2", ln.Addr().String())
	fmt.Fprintf(spoof, "PROXY TCP4 127.0.0.9 127.0.0.1 40000 990\r\n")
	if err := tls.Client(spoof, clientTLS()).Handshake(); err == nil {
		t.Fatal("TLS handshake after an untrusted PROXY header succeeded")
	}

	bal := dialFrom(t, "127.0.0.1", ln.Addr().String())
	fmt.Fprintf(bal, "PROXY TCP4 127.0.0.9 127.0.0.1 40000 990\r\n")
	tc := tls.Client(bal, clientTLS())
	rc := &rawConn{t: t, c: tc, tp: newTextproto(tc)}
	rc.expect(220)
	rc.login("alice", "alice-pw")
	ts.auth.mu.Lock()
	defer ts.auth.mu.Unlock()
	if len(ts.auth.calls) != 1 || ts.auth.calls[0].ClientIP != "127.0.0.9" {
		t.Fatalf("logins = %+v, want one from 127.0.0.9", ts.auth.calls)
	}
}

// TestProxyPassiveData: behind the balancer a passive data connection from the
// balancer needs a header naming the session's client; any other peer must be the
// client itself. Before, the balancer's address was accepted with no header at all.
func TestProxyPassiveData(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, trustLoopback1, func(c *Config) { c.DataTimeout = 8 * time.Second })
	ctl := dialFrom(t, "127.0.0.1", ts.addr)
	fmt.Fprintf(ctl, "PROXY TCP4 127.0.0.3 127.0.0.1 40000 21\r\n")
	rc := &rawConn{t: t, c: ctl, tp: newTextproto(ctl)}
	rc.expect(220)
	// A second header, as a command line, is an unknown command and changes nothing.
	if code, _ := rc.cmd("PROXY TCP4 127.0.0.5 127.0.0.1 40000 21"); code != 500 {
		t.Fatalf("PROXY as a command = %d, want 500", code)
	}
	rc.login("alice", "alice-pw")
	if got := ts.auth.calls[0].ClientIP; got != "127.0.0.3" {
		t.Fatalf("client_ip = %q, want 127.0.0.3 from the header", got)
	}
	if code, _ := rc.cmd("EPRT |1|127.0.0.5|2000|"); code != 500 {
		t.Fatalf("EPRT to another address = %d, want 500 (bounce)", code)
	}
	// A non-empty listing, so a served connection shows.
	if err := os.WriteFile(ts.home+"/listed.txt", nil, 0o600); err != nil {
		t.Fatal(err)
	}

	port := func() string {
		_, msg := rc.cmd("EPSV")
		var p int
		if _, err := fmt.Sscanf(msg[strings.Index(msg, "(|||"):], "(|||%d|)", &p); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("127.0.0.1:%d", p)
	}
	dropped := []struct{ name, from, send string }{
		{"balancer without header", "127.0.0.1", "not a PROXY header\r\n"},
		{"balancer naming another client", "127.0.0.1", "PROXY TCP4 127.0.0.5 127.0.0.1 40000 30000\r\n"},
		{"balancer with a LOCAL header", "127.0.0.1", string(proxyV2(0, 0, nil))},
		{"another peer", "127.0.0.4", ""},
		{"another peer with a header", "127.0.0.4", "PROXY TCP4 127.0.0.3 127.0.0.1 40000 30000\r\n"},
	}
	addr := port()
	rc.expect150("LIST")
	for _, d := range dropped {
		c := dialFrom(t, d.from, addr)
		fmt.Fprint(c, d.send)
		if !closedUnanswered(t, c) {
			t.Fatalf("%s: data connection served", d.name)
		}
	}
	good := dialFrom(t, "127.0.0.1", addr)
	fmt.Fprintf(good, "PROXY TCP4 127.0.0.3 127.0.0.1 40000 30000\r\n")
	if _, err := io.ReadAll(good); err != nil {
		t.Fatal(err)
	}
	rc.expect(226)

	// The client itself may connect directly (the passive ports are not proxied).
	addr = port()
	rc.expect150("LIST")
	direct := dialFrom(t, "127.0.0.3", addr)
	if _, err := io.ReadAll(direct); err != nil {
		t.Fatal(err)
	}
	rc.expect(226)
}

func (rc *rawConn) expect150(cmd string) {
	rc.t.Helper()
	if code, msg := rc.cmd("%s", cmd); code != 150 {
		rc.t.Fatalf("%s = %d %s", cmd, code, msg)
	}
}

func TestProxyConfigNeedsTrusted(t *testing.T) {
	t.Parallel()
	cfg := testConfig()
	cfg.HomeRoot = t.TempDir()
	cfg.ProxyProtocol = true
	if _, err := New(cfg, &fakeAuth{}, nil, nil); err == nil || !strings.Contains(err.Error(), "trusted") {
		t.Fatalf("New with PROXY on and no trusted peers: %v", err)
	}
}

// proxyV2 is a PROXY v2 header: command, family and the address block.
func proxyV2(cmd, fam byte, addrs []byte) []byte {
	b := append([]byte(nil), proxyproto.V2Signature...)
	b = append(b, 0x20|cmd, fam, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(addrs)))
	return append(b, addrs...)
}
