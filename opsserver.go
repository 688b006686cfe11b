package main

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// opsLimits bound what one client can hold on the ops listener, which anyone who reaches the
// port can talk to before any signature is checked.
type opsLimits struct {
	readHeader time.Duration // request line and headers
	read       time.Duration // the whole request, body included (bodies are at most 64 KiB)
	write      time.Duration // from the end of the headers to the end of the answer
	idle       time.Duration // a keep-alive connection between requests
	maxConns   int           // connections served at once; more wait in the listen backlog
}

// defaultOpsLimits suit Django's purges and pings and a Prometheus scrape on a local network.
var defaultOpsLimits = opsLimits{
	readHeader: 5 * time.Second,
	read:       10 * time.Second,
	write:      30 * time.Second,
	idle:       60 * time.Second,
	maxConns:   64,
}

func newOpsServer(h http.Handler, lim opsLimits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.readHeader,
		ReadTimeout:       lim.read,
		WriteTimeout:      lim.write,
		IdleTimeout:       lim.idle,
		MaxHeaderBytes:    16 << 10,
	}
}

// limitListener accepts at most n connections at a time from l: Accept waits for one of them
// to close before taking the next from the kernel's backlog. Close ends a waiting Accept.
func limitListener(l net.Listener, n int) net.Listener {
	return &capListener{Listener: l, slots: make(chan struct{}, n), done: make(chan struct{})}
}

type capListener struct {
	net.Listener
	slots     chan struct{} // one token per open connection
	done      chan struct{}
	closeOnce sync.Once
}

func (l *capListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &capConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *capListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

// capConn gives its slot back on its first Close.
type capConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *capConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
