package ftpdriver

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

func FuzzEPSV(f *testing.F) {
	for _, s := range []string{"", "1", "2", "ALL", "all", " 2 ", "3", "|||1|", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := parseEPSV(s)
		trimmed := strings.ToUpper(strings.TrimSpace(s))
		want := epsvBadProt
		switch trimmed {
		case "", "1", "2":
			want = epsvOpen
		case "ALL":
			want = epsvAll
		}
		if got != want {
			t.Fatalf("parseEPSV(%q) = %v, want %v", s, got, want)
		}
	})
}

// FuzzCommandLine sends arbitrary control lines to a logged-in session of a real
// server: whatever they hold, the server answers each with a well-formed reply and
// stays alive (a NOOP afterwards still gets 200), and nothing leaves the home.
func FuzzCommandLine(f *testing.F) {
	for _, s := range []string{
		"LIST", "PORT 1", "PORT 127,0,0,1,4", "EPRT |2|::1|", "CWD ../../..", "RETR /etc/passwd",
		"MKD \x00", "SITE CHMOD 777", "MFMT 2020 x", "REST -1", "OPTS HASH MD5", "HASH ..",
		"RNTO x", "STAT /../", "USER", "PASS", "AUTH TLS", "PROT Q", "TYPE Z", "MLST ../..",
		"\xff\xf4\xff\xf2ABOR", "SIZE \xff\xfe", "DELE /", "RMD /", "STOU ../x",
	} {
		f.Add(s)
	}
	ts := newTestServer(f, func(c *Config) { c.DataTimeout = 50 * time.Millisecond })
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		f.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	readReply := func(t testing.TB) string {
		t.Helper()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var last string
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("reading reply: %v (after %q)", err, last)
			}
			last = line
			// The last line of a reply is "ddd text"; middle lines are anything else.
			if len(line) >= 4 && line[3] == ' ' && line[0] >= '1' && line[0] <= '5' {
				return line
			}
		}
	}
	readReply(f)
	for _, l := range []string{"USER alice", "PASS alice-pw"} {
		_, _ = c.Write([]byte(l + "\r\n"))
		readReply(f)
	}
	f.Fuzz(func(t *testing.T, line string) {
		line = strings.NewReplacer("\r", "", "\n", "").Replace(line)
		if len(line) > 1000 {
			line = line[:1000]
		}
		verb, _, _ := strings.Cut(strings.ToUpper(line), " ")
		switch verb {
		case "QUIT", "REIN":
			return // ends the session by design
		case "LIST", "NLST", "MLSD", "RETR", "STOR", "APPE", "STOU":
			return // waits for a data connection; covered by the other tests
		}
		_, _ = c.Write([]byte(line + "\r\n"))
		readReply(t)
		_, _ = c.Write([]byte("NOOP\r\n"))
		for {
			if reply := readReply(t); strings.HasPrefix(reply, "200 NOOP") {
				break
			}
		}
	})
}
