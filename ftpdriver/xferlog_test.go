package ftpdriver

import (
	"strings"
	"testing"
)

func TestXferLog(t *testing.T) {
	t.Parallel()
	var buf lockedBuffer
	ts := newTestServer(t, func(c *Config) { c.XferLog = NewXferLog(&buf) })
	c := ts.client(t, "alice", "alice-pw")
	if err := c.Stor("a file.txt", strings.NewReader("12345")); err != nil {
		t.Fatal(err)
	}
	r, err := c.Retr("a file.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = r.Read(make([]byte, 10))
	r.Close()
	if _, err := c.List("/"); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("xferlog lines = %q, want 2 (listings are not logged)", lines)
	}
	for i, dir := range []string{"i", "o"} {
		f := strings.Fields(lines[i])
		// 5 date fields, then: seconds host bytes name type action dir mode user service auth id status
		if len(f) != 18 || f[6] != "127.0.0.1" || f[7] != "5" || f[8] != "/a_file.txt" || f[11] != dir ||
			f[13] != "alice" || f[17] != "c" {
			t.Errorf("line %d = %q", i, lines[i])
		}
	}
}
