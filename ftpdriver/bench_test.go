package ftpdriver

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"testing"
)

// BenchmarkLogin measures one whole session as a benchmark client sees it: connect,
// greeting, USER, PASS (an instant authenticator, as a cache hit is), QUIT.
func BenchmarkLogin(b *testing.B) {
	benchLogins(b, newTestServer(b))
}

// BenchmarkLoginLogged is BenchmarkLogin with the sidecar's default logging (text, INFO),
// written to io.Discard: what the session's log lines cost (allocations are the
// figure that load does not distort; they include the client's).
func BenchmarkLoginLogged(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo}))
	benchLogins(b, newTestServerLog(b, log))
}

func benchLogins(b *testing.B, ts *testServer) {
	b.ReportAllocs()
	for b.Loop() {
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			b.Fatal(err)
		}
		r := bufio.NewReader(c)
		for _, cmd := range []string{"", "USER alice\r\n", "PASS alice-pw\r\n", "QUIT\r\n"} {
			if cmd != "" {
				if _, err := c.Write([]byte(cmd)); err != nil {
					b.Fatal(err)
				}
			}
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					b.Fatal(err)
				}
				if len(line) >= 4 && line[3] == ' ' {
					break
				}
			}
		}
		c.Close()
	}
}

// BenchmarkCommand is one command through the control connection: goftp's line read and
// split, djftpd's dispatch (login and permission checks), the reply.
func BenchmarkCommand(b *testing.B) {
	ts := newTestServer(b)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	readReply := func() string {
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) >= 4 && line[3] == ' ' {
				return line
			}
		}
	}
	readReply()
	for _, l := range []string{"USER alice\r\n", "PASS alice-pw\r\n"} {
		_, _ = c.Write([]byte(l))
		readReply()
	}
	b.ReportAllocs()
	for b.Loop() {
		_, _ = c.Write([]byte("SIZE missing.txt\r\n"))
		if line := readReply(); line[:3] != "550" {
			b.Fatal(line)
		}
	}
}

func BenchmarkParsePORT(b *testing.B) {
	for b.Loop() {
		if _, err := parsePORT("192,0,2,1,117,48"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseEPRT(b *testing.B) {
	for b.Loop() {
		if _, err := parseEPRT("|2|2001:db8::1|30000|"); err != nil {
			b.Fatal(err)
		}
	}
}
