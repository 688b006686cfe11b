package sftpd

import (
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// defaultParkAfter is how long a session may wait for its client's next request, with nothing
// in flight and no handle open, before its request server is parked. Starting a new one (11
// goroutines, a few allocations) is nothing beside a second of silence; a session with a
// handle open (a transfer, a listing) is never parked.
const defaultParkAfter = time.Second

// SFTP packet types parkingChannel follows (RFC draft-ietf-secsh-filexfer-02).
const (
	fxpClose  = 4
	fxpHandle = 102
)

// errParked ends a request server whose session is parked; it is not the session's end.
var errParked = errors.New("sftpd: session parked while idle")

// errRestart ends a request server that serves no file to start one with pkg/sftp's
// allocator for the file the client opens; it is not the session's end.
var errRestart = errors.New("sftpd: request server restarted for a transfer")

// fxpOpen is SSH_FXP_OPEN.
const fxpOpen = 3

// allocInflight is how many requests a request server with the allocator may have read and
// not answered. Each holds one or two of its 256 KiB pages until answered, and pages are
// kept for reuse, so this bounds a transferring session's pages (~8 MiB) whatever the
// client's queue depth (64 requests for OpenSSH's sftp and the bench's client); eight
// workers serve them.
const allocInflight = 16

// parkingChannel is a session channel as pkg/sftp's request server sees it. pkg/sftp starts
// 11 goroutines per request server (8 read/write workers — a constant, not an option — a
// command worker, a dispatcher and the packet manager), ~4.8 KB each even when idle: most
// of an idle session's memory. So the channel follows the packets both ways, and when the
// server asks for the next request with nothing in flight and no handle open, and none
// comes within parkAfter, the read fails with errParked and the request server ends; the
// one goroutine left waits for the client's next bytes and starts a new request server over
// them. The server's state that goes with it is none a client can see: handles (none open),
// and the numbering of handles, which starts again. The price is paid at each request read
// with no handle open: a goroutine and a timer (5 allocations, ~270 B).
type parkingChannel struct {
	ch        ssh.Channel
	handlers  sftp.Handlers
	parkAfter time.Duration
	done      chan struct{}   // closed when the session ends (not when it parks)
	wg        *sync.WaitGroup // the connection's; one count for the chain of goroutines serving
	ended     func()          // if set, called as the session ends (readServer's files)

	// Owned by the goroutine reading requests (one at a time, handed over by mu).
	pending []byte   // bytes the parked session's waiter read, for the next request server
	alloc   bool     // the request server runs with pkg/sftp's allocator
	hdr     [64]byte // the first bytes of the request packet being read
	got     int      // bytes of that packet read so far
	size    int      // its size with its length field; 0 until the length is read

	mu       sync.Mutex
	answered sync.Cond           // on mu: a response was written whole
	inflight int                 // requests read and not yet answered
	handles  map[string]struct{} // handles given and not closed
	broken   bool                // a packet not understood: never park again
	wleft    int                 // bytes of the response being written still to come
	waiting  bool                // a Read waits for waitRead's result
	result   chan readResult     // waitRead's result, for that Read
}

type readResult struct {
	b   []byte
	err error
}

func newParkingChannel(ch ssh.Channel, h sftp.Handlers, parkAfter time.Duration, wg *sync.WaitGroup) *parkingChannel {
	c := &parkingChannel{ch: ch, handlers: h, parkAfter: parkAfter, done: make(chan struct{}), wg: wg,
		handles: map[string]struct{}{}, result: make(chan readResult, 1)}
	c.answered.L = &c.mu
	return c
}

// serve runs request servers until the session ends, closing done, or parks, leaving the
// rest of the chain (and its WaitGroup count) to waitRead.
//
// A request server serving a file runs with pkg/sftp's allocator: it reuses 256 KiB pages
// for the packets it reads and the data it sends instead of allocating each (~1.3 bytes
// allocated per byte sent, ~2.5 per byte received without it, and a GC cycle every few MB),
// and keeps them until it ends. One that serves no file (a login, a listing, an idle
// session) runs without, so idle sessions hold no page: the client's OPEN, with nothing
// else in flight and no handle open, restarts the request server with the allocator
// (restartForOpen), and parking goes back to none.
func (c *parkingChannel) serve() {
	for {
		var opts []sftp.RequestServerOption
		if c.alloc {
			opts = append(opts, sftp.WithRSAllocator())
		}
		err := sftp.NewRequestServer(c, c.handlers, opts...).Serve()
		switch {
		case errors.Is(err, errRestart):
			continue
		case errors.Is(err, errParked):
			return
		}
		c.end()
		return
	}
}

// waitResponses waits until the request server has written its responses to the requests
// it read. At the client's EOF (a client may send its requests, then EOF, and read the
// replies) pkg/sftp's request server drops the responses still queued for its packet manager
// as it ends, so the EOF waits for them. Every request read before it was taken (a packet
// not understood ends the server at once), so each is answered.
func (c *parkingChannel) waitResponses() { c.waitInflight(1) }

// waitInflight waits until fewer than n requests read are unanswered (or the count no longer
// holds: broken).
func (c *parkingChannel) waitInflight(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for !c.broken && c.inflight >= n {
		c.answered.Wait()
	}
}

// end ends the session's chain of goroutines once the responses written are sent (the
// session's end then sends the exit status and closes the channel).
func (c *parkingChannel) end() {
	if c.ended != nil {
		c.ended()
	}
	if f, ok := c.ch.(interface{ Flush() error }); ok {
		_ = f.Flush()
	}
	close(c.done)
	c.wg.Done()
}

func (c *parkingChannel) Close() error { return c.ch.Close() }

// Read gives the request server the client's bytes; the client's EOF comes once the
// requests before it are answered (waitResponses).
func (c *parkingChannel) Read(p []byte) (int, error) {
	n, err := c.read(p)
	if n == 0 && errors.Is(err, io.EOF) {
		c.waitResponses()
	}
	return n, err
}

// read reads the client's bytes. At a packet boundary with no handle open it waits for them
// through waitRead, to park if the session stays idle.
func (c *parkingChannel) read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		c.track(p[:n])
		return n, nil
	}
	if c.got == 0 && c.parkable() {
		return c.readOrPark(p)
	}
	if c.got == 0 && c.alloc { // the next request waits while allocInflight are unanswered
		c.waitInflight(allocInflight)
	}
	n, err := c.ch.Read(p)
	if c.restartForOpen(p[:n]) {
		return 0, errRestart
	}
	c.track(p[:n])
	return n, err
}

// restartForOpen: b is the start of a request's body (its length read), the request is an
// OPEN, the request server has no allocator, no handle is open and nothing is in flight;
// then the packet goes back to pending, for the request server that restarts with one.
func (c *parkingChannel) restartForOpen(b []byte) bool {
	if c.alloc || c.got != 4 || c.size <= 4 || len(b) == 0 || b[0] != fxpOpen {
		return false
	}
	c.mu.Lock()
	idle := !c.broken && c.inflight == 0 && len(c.handles) == 0
	c.mu.Unlock()
	if !idle {
		return false
	}
	c.pending = append(append(make([]byte, 0, 4+len(b)), c.hdr[:4]...), b...)
	c.got, c.size = 0, 0
	c.alloc = true
	return true
}

// parkable: no handle open (a transfer, a listing); requests may still be in flight.
func (c *parkingChannel) parkable() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.broken && len(c.handles) == 0
}

// readOrPark reads through waitRead; once the session has been idle (nothing in flight, no
// handle open) for parkAfter, it parks: waitRead keeps waiting, and starts the next request
// server.
func (c *parkingChannel) readOrPark(p []byte) (int, error) {
	c.mu.Lock()
	c.waiting = true
	c.mu.Unlock()
	go c.waitRead(len(p))
	t := time.NewTimer(c.parkAfter)
	defer t.Stop()
	for {
		select {
		case r := <-c.result:
			return c.take(p, r)
		case <-t.C:
		}
		c.mu.Lock()
		if c.broken || c.inflight > 0 || len(c.handles) > 0 { // busy: wait on
			c.mu.Unlock()
			t.Reset(c.parkAfter)
			continue
		}
		c.waiting = false
		var r readResult
		came := false
		select {
		case r = <-c.result: // it came as the timer fired
			came = true
		default:
			c.alloc = false // for waitRead's next request server
		}
		c.mu.Unlock()
		if came {
			return c.take(p, r)
		}
		return 0, errParked
	}
}

// take gives a result of waitRead to Read.
func (c *parkingChannel) take(p []byte, r readResult) (int, error) {
	n := copy(p, r.b)
	c.pending = r.b[n:]
	c.track(p[:n])
	return n, r.err
}

// waitRead reads the client's next bytes for the Read waiting for them or, once parked,
// starts the next request server over them (or ends the session when the channel ended).
func (c *parkingChannel) waitRead(size int) {
	buf := make([]byte, size)
	n, err := c.ch.Read(buf)
	c.mu.Lock()
	if c.waiting {
		c.waiting = false
		c.result <- readResult{buf[:n], err}
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if n == 0 && err != nil {
		c.end()
		return
	}
	c.pending = buf[:n]
	c.serve()
}

// track follows the request packets in b, which the request server has just read: it
// counts each complete packet in flight, and a CLOSE closes its handle.
func (c *parkingChannel) track(b []byte) {
	for len(b) > 0 {
		want := c.size - c.got
		if c.size == 0 {
			want = 4 - c.got
		}
		k := min(want, len(b))
		if c.got < len(c.hdr) {
			copy(c.hdr[c.got:], b[:k])
		}
		c.got += k
		b = b[k:]
		if c.size == 0 && c.got == 4 {
			c.size = 4 + int(binary.BigEndian.Uint32(c.hdr[:4]))
			if c.size == 4 { // empty: pkg/sftp ends the session
				c.breakTracking()
				c.got, c.size = 0, 0
			}
		}
		if c.size > 4 && c.got == c.size {
			c.request(c.hdr[:min(c.size, len(c.hdr))])
			c.got, c.size = 0, 0
		}
	}
}

// request counts a request packet read whole (hdr: its first bytes).
func (c *parkingChannel) request(hdr []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.inflight++
	if hdr[4] != fxpClose {
		return
	}
	if h, ok := sshString(hdr[min(9, len(hdr)):]); ok {
		delete(c.handles, h)
	} else {
		c.broken = true // a handle longer than hdr holds: pkg/sftp's are short decimal numbers
	}
}

// Write sends the request server's responses, following them: a response written whole is
// one request less in flight, and a HANDLE response opens a handle.
func (c *parkingChannel) Write(p []byte) (int, error) {
	n, err := c.ch.Write(p)
	c.response(p)
	return n, err
}

// response follows a write of the request server's (a response's header, whole, or the
// rest of its payload).
func (c *parkingChannel) response(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.wleft > 0:
		c.wleft -= len(p)
	case len(p) < 5: // pkg/sftp writes each response's header whole
		c.broken = true
	default:
		c.wleft = 4 + int(binary.BigEndian.Uint32(p)) - len(p)
		if p[4] == fxpHandle {
			h, ok := sshString(p[min(9, len(p)):])
			c.handles[h] = struct{}{}
			c.broken = c.broken || !ok
		}
	}
	if c.wleft < 0 {
		c.broken = true
	}
	if c.wleft == 0 {
		c.inflight--
	}
	c.answered.Signal() // also when broken: the cap no longer holds
}

func (c *parkingChannel) breakTracking() {
	c.mu.Lock()
	c.broken = true
	c.mu.Unlock()
}

// sshString reads an SSH string (uint32 length, bytes) from the start of b.
func sshString(b []byte) (string, bool) {
	if len(b) < 4 {
		return "", false
	}
	l := int(binary.BigEndian.Uint32(b))
	if l > len(b)-4 {
		return "", false
	}
	return string(b[4 : 4+l]), true
}
