package sftpd

import (
	"bytes"
	"net"
	"sync"
	"testing"
	"time"
)

// recordingConn records its writes.
type recordingConn struct {
	net.Conn // nil: only Write is used
	mu       sync.Mutex
	writes   [][]byte
}

func (c *recordingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes = append(c.writes, bytes.Clone(p))
	return len(p), nil
}

func (c *recordingConn) got() [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([][]byte(nil), c.writes...)
}

// TestCorkGathersABatch: the writes between corkWrites and uncorkWrites go out as one, in
// order; writes outside a batch go at once.
func TestCorkGathersABatch(t *testing.T) {
	rc := &recordingConn{}
	c := &idleConn{Conn: rc}
	c.cork.wait = time.Minute
	defer c.stopCork()
	for round := range 3 {
		c.corkWrites()
		for _, p := range []string{"prefix", "body of a packet", "x"} {
			if n, err := c.Write([]byte(p)); n != len(p) || err != nil {
				t.Fatalf("write while corked: %d, %v", n, err)
			}
		}
		if n := len(rc.got()); n != 2*round {
			t.Fatalf("round %d: %d writes reached the connection before the batch ended", round, n)
		}
		c.uncorkWrites()
		must(t, writeString(c, "alone"))
		w := rc.got()
		if len(w) != 2*round+2 || string(w[2*round]) != "prefixbody of a packetx" || string(w[2*round+1]) != "alone" {
			t.Fatalf("round %d: writes %q", round, w)
		}
	}
}

func writeString(c *idleConn, s string) error {
	_, err := c.Write([]byte(s))
	return err
}

// TestCorkTimeout: a batch that outlives the wait (it may be waiting for window the client
// grants only once it has these bytes) has its bytes sent anyway; after corkStrikes such
// batches the connection is no longer corked.
func TestCorkTimeout(t *testing.T) {
	rc := &recordingConn{}
	c := &idleConn{Conn: rc}
	c.cork.wait = 5 * time.Millisecond
	defer c.stopCork()
	for strike := range corkStrikes {
		c.corkWrites()
		must(t, writeString(c, "stuck"))
		waitFor(t, func() bool { return len(rc.got()) == strike+1 })
		c.uncorkWrites() // the batch ends later: nothing more to send
		if n := len(rc.got()); n != strike+1 {
			t.Fatalf("strike %d: %d writes", strike, n)
		}
	}
	c.corkWrites()
	must(t, writeString(c, "direct"))
	if w := rc.got(); len(w) != corkStrikes+1 || string(w[corkStrikes]) != "direct" {
		t.Fatalf("after %d strikes a write was still gathered: %q", corkStrikes, w)
	}
	c.uncorkWrites()
}

// TestCorkLargeBatch: a batch past corkMax goes out as it grows, in order.
func TestCorkLargeBatch(t *testing.T) {
	rc := &recordingConn{}
	c := &idleConn{Conn: rc}
	c.cork.wait = time.Minute
	defer c.stopCork()
	c.corkWrites()
	var want []byte
	for i := range 3 * corkMax / (32 << 10) {
		p := bytes.Repeat([]byte{byte(i)}, 32<<10)
		want = append(want, p...)
		must(t, writeString(c, string(p)))
	}
	if n := len(rc.got()); n < 2 {
		t.Fatalf("%d writes reached the connection with %d bytes gathered", n, len(want))
	}
	c.uncorkWrites()
	if got := bytes.Join(rc.got(), nil); !bytes.Equal(got, want) {
		t.Fatal("bytes changed")
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
	}
}
