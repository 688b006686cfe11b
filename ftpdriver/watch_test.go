package ftpdriver

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestCutABOR(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, rest string
		found    bool
	}{
		{"ABOR\r\n", "", true},
		{"abor\r\nNOOP\r\n", "NOOP\r\n", true},
		{"NOOP\r\n\xff\xf4\xff\xf2ABOR\r\n", "NOOP\r\n", true},
		{"ABO", "ABO", false},
		{"ABORT\r\n", "ABORT\r\n", false},
		{"STAT\r\nAB", "STAT\r\nAB", false},
	}
	for _, tt := range tests {
		rest, found := cutABOR([]byte(tt.in))
		if string(rest) != tt.rest || found != tt.found {
			t.Errorf("cutABOR(%q) = %q, %v; want %q, %v", tt.in, rest, found, tt.rest, tt.found)
		}
	}
}

// epsvData opens an EPSV data connection for the next transfer command.
func (rc *rawConn) epsvData(t *testing.T, addr string) func() net.Conn {
	t.Helper()
	code, msg := rc.cmd("EPSV")
	if code != 229 {
		t.Fatalf("EPSV = %d %s", code, msg)
	}
	var port int
	if _, err := fmt.Sscanf(msg[strings.Index(msg, "(|||"):], "(|||%d|)", &port); err != nil {
		t.Fatal(err)
	}
	host, _, _ := net.SplitHostPort(addr)
	return func() net.Conn {
		c, err := net.Dial("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
}

// TestABORDuringDownload: ABOR stops a running transfer (426) and is answered (226);
// the session goes on.
func TestABORDuringDownload(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	f, err := os.Create(filepath.Join(ts.home, "huge.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 30); err != nil { // sparse: costs no disk
		t.Fatal(err)
	}
	f.Close()
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("RETR huge.bin"); err != nil {
		t.Fatal(err)
	}
	data := dial()
	rc.expect(150)
	if _, err := data.Read(make([]byte, 4096)); err != nil {
		t.Fatal(err)
	}
	if err := rc.tp.PrintfLine("ABOR"); err != nil {
		t.Fatal(err)
	}
	rc.expect(426)
	rc.expect(226)
	if code, _ := rc.cmd("NOOP"); code != 200 {
		t.Fatalf("NOOP after ABOR = %d", code)
	}
}

// TestKilledUploadLeavesOldFile: a client that dies mid-STOR closes its data and
// control connections at once; the data connection's end looks like a complete upload,
// but the upload must be discarded and the old file left as it was.
func TestKilledUploadLeavesOldFile(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	target := filepath.Join(ts.home, "keep.txt")
	if err := os.WriteFile(target, []byte("old content"), 0o640); err != nil {
		t.Fatal(err)
	}
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("STOR keep.txt"); err != nil {
		t.Fatal(err)
	}
	data := dial()
	rc.expect(150)
	if _, err := data.Write([]byte("partial new cont")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	rc.c.Close()
	data.Close()

	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		entries, _ := os.ReadDir(ts.home)
		if len(entries) == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b, _ := os.ReadFile(target); string(b) != "old content" {
		t.Fatalf("keep.txt = %q after a killed upload", b)
	}
	entries, _ := os.ReadDir(ts.home)
	if len(entries) != 1 {
		t.Fatalf("home holds %d entries, want only keep.txt (temporary file left?)", len(entries))
	}
	var incomplete bool
	for _, e := range ts.events.all() {
		incomplete = incomplete || e.Type == "incomplete_file_received"
	}
	if !incomplete {
		t.Fatal("no incomplete_file_received event")
	}
}

// TestIdleTimeoutNotDuringTransfer: a transfer longer than the idle timeout completes.
func TestIdleTimeoutNotDuringTransfer(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.IdleTimeout = 300 * time.Millisecond })
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("STOR slow.txt"); err != nil {
		t.Fatal(err)
	}
	data := dial()
	rc.expect(150)
	for range 8 {
		_, _ = data.Write([]byte("x"))
		time.Sleep(100 * time.Millisecond)
	}
	data.Close()
	rc.expect(226)
	if b, _ := os.ReadFile(filepath.Join(ts.home, "slow.txt")); string(b) != "xxxxxxxx" {
		t.Fatalf("slow.txt = %q", b)
	}
}
