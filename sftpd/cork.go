package sftpd

import (
	"sync"
	"time"
)

// Corking: x/crypto/ssh writes every SSH packet to the connection on its own, and a packet
// of 32 KiB with two write(2) (its 4 KiB bufio fills, then the rest goes direct): ~2.4
// write(2) and as many TCP segments per 32 KiB of a download, each sent through loopback's
// or the NIC's whole path and read by the client one by one. While batchWriter hands the
// channel a batch (up to 128 KiB, four packets), the connection gathers what x/crypto/ssh
// writes and sends it with one write(2) when the batch is through: ~0.5 per 32 KiB.
//
// The one danger is a batch that waits inside x/crypto/ssh for the client's window with
// bytes gathered: a client whose window is smaller than a batch and a half may wait for
// those very bytes before it grants more. So what is gathered goes out after corkWait in
// any case, and a connection where that happened corkStrikes times is not corked again.

// defaultCorkWait is how long gathered bytes may wait for the end of their batch (a batch
// takes ~0.2 ms here).
const defaultCorkWait = 2 * time.Millisecond

// corkStrikes is how many batches may outlive corkWait before a connection stops corking.
const corkStrikes = 4

// corkMax is the most bytes gathered; more go out at once.
const corkMax = 256 << 10

// corkState is an idleConn's corking; its zero value is uncorked.
type corkState struct {
	mu      sync.Mutex
	wait    time.Duration // corkWait; 0: defaultCorkWait
	on      bool          // writes are gathered
	since   time.Time     // when the batch being gathered started
	strikes int           // batches that outlived wait
	buf     []byte        // gathered writes
	err     error         // the connection's write error, once a gathered write failed
	timer   *time.Timer   // sends what is gathered after corkWait; nil until the first cork
}

// Write sends p, or gathers it while corked.
func (c *idleConn) Write(p []byte) (int, error) {
	c.cork.mu.Lock()
	defer c.cork.mu.Unlock()
	switch {
	case c.cork.err != nil:
		return 0, c.cork.err
	case !c.cork.on:
		return c.write(p)
	}
	c.cork.buf = append(c.cork.buf, p...)
	if len(c.cork.buf) >= corkMax {
		c.sendCorked()
	}
	return len(p), nil
}

func (c *idleConn) write(p []byte) (int, error) {
	if d := time.Duration(c.idle.Load()); d > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(d))
	}
	return c.Conn.Write(p)
}

// sendCorked writes what is gathered; c.cork.mu is held.
func (c *idleConn) sendCorked() {
	if len(c.cork.buf) > 0 && c.cork.err == nil {
		_, c.cork.err = c.write(c.cork.buf)
	}
	c.cork.buf = c.cork.buf[:0]
}

// corkWrites gathers the writes that follow, until uncorkWrites or corkWait.
func (c *idleConn) corkWrites() {
	c.cork.mu.Lock()
	defer c.cork.mu.Unlock()
	if c.cork.strikes >= corkStrikes {
		return
	}
	c.cork.on, c.cork.since = true, time.Now()
	if c.cork.buf == nil {
		c.cork.buf = *corkBufs.Get().(*[]byte)
	}
	if c.cork.timer == nil {
		c.cork.timer = time.AfterFunc(c.corkWait(), c.corkTimeout)
	} else {
		c.cork.timer.Reset(c.corkWait())
	}
}

func (c *idleConn) corkWait() time.Duration {
	if c.cork.wait == 0 {
		return defaultCorkWait
	}
	return c.cork.wait
}

// uncorkWrites sends what was gathered and stops gathering.
func (c *idleConn) uncorkWrites() {
	c.cork.mu.Lock()
	defer c.cork.mu.Unlock()
	if !c.cork.on {
		return
	}
	c.cork.timer.Stop()
	c.cork.on = false
	c.sendCorked()
	c.releaseCork()
}

// corkTimeout: a batch outlived corkWait (it may wait for window the client grants only
// once it has the bytes gathered): they go now, and the strike counts.
func (c *idleConn) corkTimeout() {
	c.cork.mu.Lock()
	defer c.cork.mu.Unlock()
	if !c.cork.on || time.Since(c.cork.since) < c.corkWait() { // a late run for an earlier batch
		return
	}
	c.cork.on = false
	c.cork.strikes++
	c.sendCorked()
	c.releaseCork()
}

// releaseCork gives the gathering buffer back, so an idle connection holds none (one grown
// past twice corkMax by a single large write is dropped).
func (c *idleConn) releaseCork() {
	if c.cork.buf != nil && cap(c.cork.buf) <= 2*corkMax {
		b := c.cork.buf[:0]
		corkBufs.Put(&b)
	}
	c.cork.buf = nil
}

// stopCork ends corking as the connection ends.
func (c *idleConn) stopCork() {
	c.cork.mu.Lock()
	defer c.cork.mu.Unlock()
	if c.cork.timer != nil {
		c.cork.timer.Stop()
	}
	c.cork.on, c.cork.strikes = false, corkStrikes
	c.cork.buf = nil
}

var corkBufs = sync.Pool{New: func() any {
	b := make([]byte, 0, corkMax+64<<10)
	return &b
}}
