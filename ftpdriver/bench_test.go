package ftpdriver

import (
	"bufio"
	"net"
	"testing"
)

// BenchmarkLogin measures one whole session as a benchmark client sees it: connect,
// greeting, USER, PASS (an instant authenticator, as a cache hit is), QUIT.
func BenchmarkLogin(b *testing.B) {
	ts := newTestServer(b)
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
