package ftpdriver

import (
	"net"
	"time"
)

// stallWatch closes a data connection on which no byte moved, either way, for a whole
// timeout: a client that opens the data connection and then neither sends nor reads
// would otherwise hold a port, a file and a goroutine for ever. Progress is read from
// the kernel's TCP counters (tcpProgress), not counted by a wrapper, so the transfer
// keeps the bare *net.TCPConn and its zero-copy paths (sendfile, splice); and a long
// transfer is never cut while it moves.
type stallWatch struct {
	done    chan struct{}
	exited  chan struct{}
	stalled bool // written by the watch goroutine before exited is closed
}

// watchStall starts watching raw; abort closes the transfer's connection. Where the
// counters cannot be read (not Linux, not TCP) nothing is watched.
func watchStall(raw net.Conn, timeout time.Duration, abort func()) *stallWatch {
	w := &stallWatch{done: make(chan struct{}), exited: make(chan struct{})}
	tc := tcpConnOf(raw)
	last, ok := tcpProgress(tc)
	if !ok {
		close(w.exited)
		return w
	}
	go w.run(tc, last, timeout, abort)
	return w
}

func (w *stallWatch) run(tc *net.TCPConn, last uint64, timeout time.Duration, abort func()) {
	defer close(w.exited)
	tick := time.NewTicker(max(timeout/8, 10*time.Millisecond))
	defer tick.Stop()
	moved := time.Now()
	for {
		select {
		case <-w.done:
			return
		case now := <-tick.C:
			n, ok := tcpProgress(tc)
			switch {
			case !ok:
				return // the connection is closed: the transfer is over
			case n != last:
				last, moved = n, now
			case now.Sub(moved) >= timeout:
				w.stalled = true
				abort()
				return
			}
		}
	}
}

// stop ends the watch and reports whether it cut the transfer.
func (w *stallWatch) stop() bool {
	close(w.done)
	<-w.exited
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
