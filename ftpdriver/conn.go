package ftpdriver

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/internal/acceptretry"
	"github.com/djftpd/djftpd/internal/loglimit"
)

// listener wraps the control listener so that every connection goftp serves is a
// controlConn: djftpd's own session state, a bounded line length and read deadlines
// (DESIGN.md §8: goftp reads lines without a bound and has no timeouts). Where
// admission can wait on the client (a PROXY header, the implicit TLS handshake),
// connections are admitted on a goroutine of their own, so a slow or hostile client
// never holds up goftp's accept loop; otherwise admission runs in that loop.
type listener struct {
	net.Listener
	srv         *Server
	implicitTLS bool
	name        string // the djftpd_accept_errors_total label: ftp or ftps (implicit)

	// A failed accept that passes (out of descriptors) is waited out, not returned:
	// goftp would retry it at once, spinning a core until descriptors come back.
	backoff    acceptretry.Backoff // owned by the goroutine calling the inner Accept
	acceptWarn loglimit.Limiter

	start    sync.Once
	admitted chan net.Conn
	failed   chan error    // the inner Accept's final error
	done     chan struct{} // closed by Close
	closeErr error
	closed   sync.Once
}

func newListener(inner net.Listener, srv *Server, implicitTLS bool) *listener {
	l := &listener{
		Listener: inner, srv: srv, implicitTLS: implicitTLS, name: "ftp",
		admitted: make(chan net.Conn), failed: make(chan error, 1), done: make(chan struct{}),
		acceptWarn: loglimit.Limiter{Interval: time.Second},
	}
	if implicitTLS {
		l.name = "ftps"
	}
	l.backoff = acceptretry.Backoff{Done: l.done, OnRetry: l.acceptFailed}
	return l
}

// acceptFailed counts a failed accept that will be retried after wait, and logs it at
// WARN at most once a second.
func (l *listener) acceptFailed(err error, wait time.Duration) {
	l.srv.cfg.Metrics.AcceptError(l.name)
	if ok, suppressed := l.acceptWarn.Allow(time.Now()); ok {
		l.srv.log.Warn("accept failed, retrying (too many open files? raise the descriptor limit)",
			"listener", l.name, "err", err, "retry_in", wait, "suppressed_since_last", suppressed)
	}
}

// acceptEnded is what goftp gets once the inner Accept failed for good: net.ErrClosed
// after Close, else the error wrapped so that goftp, which retries at once whatever
// claims to be temporary, returns it.
func (l *listener) acceptEnded(err error) error {
	select {
	case <-l.done:
		return net.ErrClosed
	default:
		return fmt.Errorf("accept: %w", err)
	}
}

// Listen opens a control listener (plain or implicit FTPS) on a TCP address. Its
// connections start without TCP keep-alive, which Go otherwise turns on at every accept
// (four setsockopt calls per connection): between commands the login and idle timeouts
// close a silent or vanished client, and a session turns keep-alive on at its first
// transfer (controlConn.keepAlive), when the control connection may stay silent longer.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(ctx, "tcp", addr)
}

// keepAlive turns TCP keep-alive on for the rest of the session (once; Go's default
// timings): during a transfer the control connection is silent for as long as the
// transfer lasts, and NAT and balancers forget silent flows. Listen left it off.
func (c *controlConn) keepAlive() {
	if c.keepAliveOn {
		return
	}
	c.keepAliveOn = true
	raw := c.raw
	if p, ok := raw.(*proxiedConn); ok {
		raw = p.Conn
	}
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true})
	}
}

// proxyHeaderTimeout bounds the wait for a PROXY header.
const proxyHeaderTimeout = 5 * time.Second

// Accept returns the next admitted connection, a *controlConn.
func (l *listener) Accept() (net.Conn, error) {
	if !l.implicitTLS && !l.srv.cfg.ProxyProtocol {
		return l.acceptInline()
	}
	l.start.Do(func() { go l.acceptLoop() })
	select {
	case c := <-l.admitted:
		return c, nil
	case err := <-l.failed:
		l.failed <- err
		return nil, err
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops accepting; connections being admitted are closed.
func (l *listener) Close() error {
	l.closed.Do(func() {
		close(l.done)
		l.closeErr = l.Listener.Close()
	})
	return l.closeErr
}

// acceptInline accepts and admits in the caller, goftp's accept loop: nothing in
// admission waits on the client then (the connect gates, at most a 421 written to an
// empty socket buffer), and each connection costs one goroutine hand-off (goftp
// starting the session) instead of three (acceptLoop, admit, the admitted channel).
func (l *listener) acceptInline() (net.Conn, error) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			if l.backoff.Wait(err) {
				continue
			}
			return nil, l.acceptEnded(err)
		}
		l.backoff.Reset()
		if c := l.admitConn(raw); c != nil {
			return c, nil
		}
	}
}

// acceptLoop owns the inner Accept; it ends when the listener is closed (or its Accept
// fails for good).
func (l *listener) acceptLoop() {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			if l.backoff.Wait(err) {
				continue
			}
			l.failed <- l.acceptEnded(err)
			return
		}
		l.backoff.Reset()
		go l.admit(raw)
	}
}

// admit admits a connection on a goroutine of its own (admitConn) and hands it to
// goftp's Accept.
func (l *listener) admit(raw net.Conn) {
	c := l.admitConn(raw)
	if c == nil {
		return
	}
	select {
	case l.admitted <- c:
	case <-l.done:
		_ = c.Close()
	}
}

// admitConn applies the PROXY trust rule, the connect gates and, on the implicit
// listener, the TLS handshake, each under a deadline, and returns the connection for
// goftp; nil when it was refused (421) and closed.
func (l *listener) admitConn(raw net.Conn) *controlConn {
	srv := l.srv
	raw, ok := srv.acceptProxied(raw)
	if !ok {
		return nil
	}
	sess := newSession(srv, raw)
	if l.implicitTLS {
		sess.conn.tls = tls.Server(raw, sess.sessionTLS())
		sess.protP = true
	}
	if err := srv.admit(sess); err != nil {
		srv.cfg.Metrics.connsRefused.WithLabelValues(refusalReason(err)).Inc()
		sess.log.Info("connection refused", "reason", err.Error())
		sess.conn.refuse(replyFor(err))
		return nil
	}
	// Here, not in goftp's first write: that handshake would have no deadline.
	if err := sess.conn.handshake(); err != nil {
		sess.log.Info("TLS handshake failed", "err", err)
		_ = raw.Close()
		srv.removeSession(sess)
		return nil
	}
	if srv.debugLog { // INFO has one line per session: its end
		sess.log.Debug("session start")
	}
	sess.emit(djangoclient.Event{Type: djangoclient.EventConnect})
	return sess.conn
}

// refuse writes one reply to a connection refused at connect and closes it, all
// within the handshake deadline: a client that does not read, or on the implicit
// listener never sends its ClientHello, cannot hold the connection open.
func (c *controlConn) refuse(code int, text string) {
	_ = c.raw.SetDeadline(c.sess.handshakeDeadline())
	if _, err := fmt.Fprintf(c.stream(), "%d %s\r\n", code, text); err != nil {
		c.sess.log.Debug("write refusal failed", "err", err)
	}
	_ = c.raw.Close()
}

// addrOf is the IP of a network address, IPv4-mapped addresses unmapped.
func addrOf(a net.Addr) netip.Addr {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// controlConn is the control connection as goftp sees it. Its RemoteAddr carries the
// session, which is how commands find djftpd's state from goftp's *Session.
// goftp defect: a Command's Execute gets only goftp's *Session, which has no field or
// context for the embedder's state; RemoteAddr is the one value it passes through.
type controlConn struct {
	raw     net.Conn
	tls     *tls.Conn // set once TLS is negotiated; reads and writes then go through it
	sess    *session
	lineLen int // bytes of the current line read so far

	keepAliveOn bool // TCP keep-alive turned on (keepAlive); the session goroutine's

	// What a transfer watcher (watch.go) read while a transfer ran: commands for goftp
	// to read next, and whether the client closed the control connection.
	pendingMu sync.Mutex
	pending   []byte
	peerGone  bool
	writeMu   sync.Mutex
	closeOnce sync.Once
}

// sessionAddr is the control peer's address, plus the session it belongs to.
type sessionAddr struct {
	net.Addr
	sess *session
}

// Read is the frame an idle session parks in, under goftp's line reader: the cold
// paths (stop, overlong line, timeout) live in their own functions so that this frame
// stays small, and with it the stack every idle session keeps (see readCold).
func (c *controlConn) Read(p []byte) (int, error) {
	if stop := c.stopBeforeRead(); stop != "" {
		return c.readCold(stop, nil)
	}
	n, err := c.readPending(p)
	if n == 0 && err == nil {
		n, err = c.stream().Read(p)
	}
	if c.holdBack(p, n) {
		n, err = bytes.IndexByte(p[:n], '\n')+1, nil // the error comes again on a later read
	}
	if !c.countLine(p[:n]) {
		return c.readCold("", errLineTooLong)
	}
	if err != nil && isReadTimeout(err) {
		return c.readCold("", err)
	}
	return n, err
}

// isReadTimeout reports a deadline error (out of Read's frame, which an idle session keeps).
//
//go:noinline
func isReadTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// stopBeforeRead is the server's stop text, if it is stopping; otherwise it arms the
// read deadline.
func (c *controlConn) stopBeforeRead() string {
	srv := c.sess.srv
	srv.stateMu.RLock()
	defer srv.stateMu.RUnlock()
	stop := c.sess.stopText()
	if stop == "" {
		_ = c.raw.SetReadDeadline(c.sess.readDeadline())
	}
	return stop
}

// countLine adds b to the current line's length; false when the line is too long.
func (c *controlConn) countLine(b []byte) bool {
	max := c.sess.srv.cfg.MaxLineLength
	for _, ch := range b {
		c.lineLen++
		if c.lineLen > max {
			return false
		}
		if ch == '\n' {
			c.lineLen = 0
		}
	}
	return true
}

// readCold ends a Read that cannot return data: the server stopping (stop), a line too
// long, or a read timeout (421 with the stop text if the server stopped meanwhile).
//
//go:noinline
func (c *controlConn) readCold(stop string, err error) (int, error) {
	srv := c.sess.srv
	switch {
	case stop != "":
		c.sess.reply(421, stop)
		return 0, io.EOF
	case errors.Is(err, errLineTooLong):
		c.sess.endReason = "line_too_long"
		c.sess.log.Warn("control line too long, closing", "limit", srv.cfg.MaxLineLength)
		c.sess.reply(500, "Command line too long")
		return 0, errLineTooLong
	default: // a read timeout
		srv.stateMu.RLock()
		stop = c.sess.stopText()
		srv.stateMu.RUnlock()
		if stop != "" {
			c.sess.reply(421, stop)
		} else {
			c.sess.endReason = "timeout" // the session-end line says it at INFO
			c.sess.log.Debug("control connection timed out", "logged_in", c.sess.grant != nil)
			c.sess.reply(421, "Timeout, closing control connection")
		}
		return 0, io.EOF
	}
}

// holdBack keeps what follows the first line end in p[:n] for the next Read, so that
// goftp's line reader never holds more than the line it is running: whatever the
// client sent beyond it is in c.pending, where AUTH TLS can see it (pendingInput).
func (c *controlConn) holdBack(p []byte, n int) bool {
	i := bytes.IndexByte(p[:n], '\n')
	if i < 0 || i+1 == n {
		return false
	}
	c.pendingMu.Lock()
	c.pending = append(append([]byte(nil), p[i+1:n]...), c.pending...)
	c.pendingMu.Unlock()
	return true
}

// pendingInput reports whether the client sent anything after the current line.
func (c *controlConn) pendingInput() bool {
	c.pendingMu.Lock()
	defer c.pendingMu.Unlock()
	return len(c.pending) > 0
}

func (c *controlConn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	// A client that stops reading must not hold a session goroutine forever.
	_ = c.raw.SetWriteDeadline(time.Now().Add(c.sess.srv.cfg.IdleTimeout))
	return c.stream().Write(p)
}

// Close closes the connection and ends the session; goftp may call it more than once.
func (c *controlConn) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.raw.Close()
		c.sess.end()
	})
	return err
}

func (c *controlConn) LocalAddr() net.Addr { return c.raw.LocalAddr() }
func (c *controlConn) RemoteAddr() net.Addr {
	return &sessionAddr{Addr: c.raw.RemoteAddr(), sess: c.sess}
}
func (c *controlConn) SetDeadline(t time.Time) error      { return c.raw.SetDeadline(t) }
func (c *controlConn) SetReadDeadline(t time.Time) error  { return c.raw.SetReadDeadline(t) }
func (c *controlConn) SetWriteDeadline(t time.Time) error { return c.raw.SetWriteDeadline(t) }
