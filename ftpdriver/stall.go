package ftpdriver

import (
	"net"
	"sync"
	"time"
)

// stallWatch closes a data connection on which no byte moved, either way, for a whole
// timeout: a client that opens the data connection and then neither sends nor reads
// would otherwise hold a port, a file and a goroutine for ever. Progress is read from
// the kernel's TCP counters (tcpProgress), not counted by a wrapper, so the transfer
// keeps the bare *net.TCPConn and its zero-copy paths (sendfile, splice); and a long
// transfer is never cut while it moves. It runs on a timer, every timeout/8, not on a
// goroutine of its own: a transfer shorter than that (3.75 s by default) costs one
// timer and one getsockopt (bench/README.md, issue 18 item 2).
type stallWatch struct {
	tc      *net.TCPConn
	timeout time.Duration
	period  time.Duration
	abort   func()

	mu      sync.Mutex // held by check while it runs, so that stop waits for it
	timer   *time.Timer
	last    uint64    // progress at the last check
	moved   time.Time // when progress was last seen
	stopped bool
	stalled bool
}

// watchStall starts watching raw; abort closes the transfer's connection. Where the
// counters cannot be read (not Linux, not TCP) nothing is watched.
func watchStall(raw net.Conn, timeout time.Duration, abort func()) *stallWatch {
	w := &stallWatch{tc: tcpConnOf(raw), timeout: timeout, period: max(timeout/8, 10*time.Millisecond), abort: abort}
	last, ok := tcpProgress(w.tc)
	if !ok {
		return w
	}
	w.mu.Lock()
	w.last, w.moved = last, time.Now()
	w.timer = time.AfterFunc(w.period, w.check)
	w.mu.Unlock()
	return w
}

// check runs on the timer: it cuts the transfer after a whole timeout without progress,
// else looks again one period later.
func (w *stallWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	n, ok := tcpProgress(w.tc)
	now := time.Now()
	switch {
	case !ok:
		return // the connection is closed: the transfer is over
	case n != w.last:
		w.last, w.moved = n, now
	case now.Sub(w.moved) >= w.timeout:
		w.stalled = true
		w.abort()
		return
	}
	w.timer.Reset(w.period)
}

// stop ends the watch, after a check under way, and reports whether it cut the transfer.
func (w *stallWatch) stop() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if w.timer != nil {
		w.timer.Stop()
	}
	return w.stalled
}

// tcpConnOf finds the TCP connection under c (a PROXY-protocol wrapper may hide it
// behind NetConn), or nil.
func tcpConnOf(c net.Conn) *net.TCPConn {
	for c != nil {
		switch v := c.(type) {
		case *net.TCPConn:
			return v
		case interface{ NetConn() net.Conn }:
			c = v.NetConn()
		default:
			return nil
		}
	}
	return nil
}
