package ftpdriver

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestParsePORT(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"127,0,0,1,4,1", "127.0.0.1:1025", true},
		{" 10,1,2,3,255,255 ", "10.1.2.3:65535", true},
		{"127,0,0,1,4", "", false},
		{"", "", false},
		{"1,2,3", "", false},
		{"256,0,0,1,4,1", "", false},
		{"a,b,c,d,e,f", "", false},
		{"127,0,0,1,4,1,9", "", false},
		{"-1,0,0,1,4,1", "", false},
	}
	for _, tt := range tests {
		got, err := parsePORT(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got.String() != tt.want) {
			t.Errorf("parsePORT(%q) = %v, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseEPRT(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"|1|132.235.1.2|6275|", "132.235.1.2:6275", true},
		{"|2|1080::8:800:200C:417A|5282|", "[1080::8:800:200c:417a]:5282", true},
		{"!1!127.0.0.1!2000!", "127.0.0.1:2000", true},
		{"|1|::1|5282|", "", false},
		{"|2|127.0.0.1|5282|", "", false},
		{"|3|127.0.0.1|5282|", "", false},
		{"|1|127.0.0.1|0|", "", false},
		{"|1|127.0.0.1|70000|", "", false},
		{"|1|127.0.0.1|", "", false},
		{"|2|fe80::1%eth0|5282|", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := parseEPRT(tt.in)
		if (err == nil) != tt.ok || (tt.ok && got.String() != tt.want) {
			t.Errorf("parseEPRT(%q) = %v, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzPORT(f *testing.F) {
	for _, s := range []string{"127,0,0,1,4,1", "127,0,0,1,4", "", ",,,,,", "1,2,3,4,5,6,7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := parsePORT(s)
		if err == nil && (!ap.IsValid() || !ap.Addr().Is4()) {
			t.Fatalf("accepted %q as %v", s, ap)
		}
	})
}

func FuzzEPRT(f *testing.F) {
	for _, s := range []string{"|1|132.235.1.2|6275|", "|2|::1|5282|", "|1|", "||||", "|2|fe80::1%x|1|"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ap, err := parseEPRT(s)
		if err != nil {
			return
		}
		if !ap.IsValid() || ap.Port() == 0 || ap.Addr().Zone() != "" {
			t.Fatalf("accepted %q as %v", s, ap)
		}
		again, err := parseEPRT(fmt.Sprintf("|%d|%s|%d|", map[bool]int{true: 1, false: 2}[ap.Addr().Is4()], ap.Addr(), ap.Port()))
		if err != nil || again != ap {
			t.Fatalf("%v does not round-trip: %v, %v", ap, again, err)
		}
	})
}

// TestPORTShortParamsNoPanic pins DESIGN.md §8: goftp's PORT panics on short
// parameters.
func TestPORTShortParamsNoPanic(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	for _, arg := range []string{"1", "127,0,0,1", "127,0,0,1,4"} {
		if code, _ := rc.cmd("PORT %s", arg); code != 501 {
			t.Errorf("PORT %s = %d, want 501", arg, code)
		}
	}
	if code, _ := rc.cmd("NOOP"); code != 200 {
		t.Fatal("session died after a short PORT")
	}
}

// TestActiveRefusesBounce pins DESIGN.md §4 "no FTP bounce": PORT/EPRT only to the
// control peer's own address and ports ≥ 1024.
func TestActiveRefusesBounce(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	for _, line := range []string{"PORT 10,0,0,1,4,1", "PORT 127,0,0,1,0,80", "EPRT |1|127.0.0.2|2000|", "EPRT |1|127.0.0.1|21|"} {
		if code, _ := rc.cmd("%s", line); code != 500 {
			t.Errorf("%s = %d, want 500", line, code)
		}
	}
}

func TestActiveModeTransfer(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if code, msg := rc.cmd("EPRT |1|127.0.0.1|%d|", port); code != 200 {
		t.Fatalf("EPRT = %d %s", code, msg)
	}
	if code, _ := rc.cmd("STOR active.txt"); code != 150 {
		t.Fatalf("STOR = %d", code)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("via active mode"))
	c.Close()
	rc.expect(226)
	if code, msg := rc.cmd("SIZE active.txt"); code != 213 || msg != "15" {
		t.Fatalf("SIZE = %d %s", code, msg)
	}
}

// TestPassiveRejectsForeignPeer pins DESIGN.md §8: goftp accepts passive data
// connections from any address. 127.0.0.2 is another address on loopback.
func TestPassiveRejectsForeignPeer(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.DataTimeout = time.Second })
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	code, msg := rc.cmd("EPSV")
	if code != 229 {
		t.Fatalf("EPSV = %d %s", code, msg)
	}
	var port int
	if _, err := fmt.Sscanf(msg[strings.Index(msg, "(|||"):], "(|||%d|)", &port); err != nil {
		t.Fatalf("parse %q: %v", msg, err)
	}
	if code, _ := rc.cmd("LIST"); code != 150 {
		t.Fatalf("LIST = %d", code)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}
	foreign, err := d.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Skipf("cannot dial from 127.0.0.2: %v", err)
	}
	defer foreign.Close()
	_ = foreign.SetReadDeadline(time.Now().Add(3 * time.Second))
	if n, err := foreign.Read(make([]byte, 1)); err == nil || n > 0 {
		t.Fatal("the foreign data connection was served")
	}
	if code, _ := rc.read(); code != 425 {
		t.Fatalf("after the data timeout: %d, want 425", code)
	}
}

func TestCheckActiveTarget(t *testing.T) {
	t.Parallel()
	s := &session{peer: netip.MustParseAddr("192.0.2.1")}
	for _, tt := range []struct {
		ap string
		ok bool
	}{{"192.0.2.1:1024", true}, {"192.0.2.1:1023", false}, {"192.0.2.2:2000", false}, {"[::ffff:192.0.2.1]:2000", true}} {
		if err := s.checkActiveTarget(netip.MustParseAddrPort(tt.ap)); (err == nil) != tt.ok {
			t.Errorf("%s: err = %v, want ok=%v", tt.ap, err, tt.ok)
		}
	}
}

// TestOnePortPassiveRange pins DESIGN.md §8: goftp breaks on a one-port passive range
// (it draws a random port in [min, max)). Transfers one after another reuse the port.
func TestOnePortPassiveRange(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ts := newTestServer(t, func(c *Config) { c.PassivePortMin, c.PassivePortMax = port, port })
	c := ts.client(t, "alice", "alice-pw")
	for i := range 3 {
		if err := c.Stor(fmt.Sprintf("f%d.txt", i), strings.NewReader("x")); err != nil {
			t.Fatalf("transfer %d on the one passive port: %v", i, err)
		}
	}
}
