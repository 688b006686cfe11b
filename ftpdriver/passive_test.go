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

// epsvPort sends EPSV and returns the announced port, or the reply code on failure.
func (rc *rawConn) epsvPort() (int, int) {
	rc.t.Helper()
	code, msg := rc.cmd("EPSV")
	if code != 229 {
		return 0, code
	}
	var port int
	if _, err := fmt.Sscanf(msg[strings.Index(msg, "(|||"):], "(|||%d|)", &port); err != nil {
		rc.t.Fatal(err)
	}
	return port, code
}

// TestUnusedPassiveListenerCloses: a passive port nobody uses is closed after the data
// timeout, not held until the session's next transfer.
func TestUnusedPassiveListenerCloses(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.DataTimeout = 200 * time.Millisecond })
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	port, code := rc.epsvPort()
	if code != 229 {
		t.Fatalf("EPSV = %d", code)
	}
	time.Sleep(600 * time.Millisecond)
	if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
		c.Close()
		t.Fatal("the passive port still accepts connections after the data timeout")
	}
	if code, _ := rc.cmd("NOOP"); code != 200 {
		t.Fatalf("NOOP = %d", code)
	}
}

// TestPassiveListenersPerAddress: one address holds at most MaxPassivePerIP pending
// passive listeners across its sessions; more get 425 until one is used or released.
func TestPassiveListenersPerAddress(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.MaxPassivePerIP = 2 })
	rcs := ts.logins(t, "alice", "alice-pw", 3)
	for i, rc := range rcs[:2] {
		if _, code := rc.epsvPort(); code != 229 {
			t.Fatalf("session %d: EPSV = %d", i, code)
		}
	}
	if _, code := rcs[0].epsvPort(); code != 229 { // replaces its own listener
		t.Fatalf("second EPSV of one session = %d, want 229", code)
	}
	if _, code := rcs[2].epsvPort(); code != 425 {
		t.Fatalf("third listener from one address: EPSV = %d, want 425", code)
	}
	rcs[1].cmd("ABOR") // releases its listener
	if _, code := rcs[2].epsvPort(); code != 229 {
		t.Fatalf("EPSV after a listener was released = %d, want 229", code)
	}
}

// TestStalledTransferAborted: a data connection on which nothing moves for the data
// timeout is closed and the transfer answered 426; the session goes on. A slow transfer
// that keeps moving is not cut.
func TestStalledTransferAborted(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.DataTimeout = 300 * time.Millisecond })
	if err := os.MkdirAll(ts.home, 0o750); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(filepath.Join(ts.home, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(64 << 20); err != nil { // more than any socket buffers hold
		t.Fatal(err)
	}
	big.Close()
	for _, cmd := range []string{"STOR up.txt", "RETR big.bin"} {
		t.Run(cmd, func(t *testing.T) {
			rc := ts.dial(t)
			rc.login("alice", "alice-pw")
			dial := rc.epsvData(t, ts.addr)
			if err := rc.tp.PrintfLine("%s", cmd); err != nil {
				t.Fatal(err)
			}
			data := dial() // then neither send nor read
			defer data.Close()
			rc.expect(150)
			start := time.Now()
			_ = rc.c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if code, msg := rc.read(); code != 426 {
				t.Fatalf("stalled %s = %d %s, want 426", cmd, code, msg)
			}
			if d := time.Since(start); d < 250*time.Millisecond {
				t.Errorf("aborted after %v, before the data timeout", d)
			}
			if code, _ := rc.cmd("NOOP"); code != 200 {
				t.Fatalf("NOOP after the abort = %d", code)
			}
		})
	}
	t.Run("slow but moving", func(t *testing.T) {
		rc := ts.dial(t)
		rc.login("alice", "alice-pw")
		dial := rc.epsvData(t, ts.addr)
		if err := rc.tp.PrintfLine("STOR slow.txt"); err != nil {
			t.Fatal(err)
		}
		data := dial()
		rc.expect(150)
		for range 10 { // 1 s in all, over three data timeouts
			_, _ = data.Write([]byte("x"))
			time.Sleep(100 * time.Millisecond)
		}
		data.Close()
		rc.expect(226)
	})
}
