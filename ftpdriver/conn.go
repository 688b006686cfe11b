package ftpdriver

import (
	"crypto/tls"
	"errors"

	"github.com/djftpd/djftpd/djangoclient"
	"io"
	"net"
	"sync"
	"time"
)

// errLineTooLong ends a connection whose control line exceeds Config.MaxLineLength.
var errLineTooLong = errors.New("control line too long")

// listener wraps the control listener so that every connection goftp serves is a
// controlConn: djftpd's own session state, a bounded line length and read deadlines
// (DESIGN.md §8: goftp reads lines without a bound and has no timeouts).
type listener struct {
	net.Listener
	srv         *Server
	implicitTLS bool
}

// Accept returns the next connection as a *controlConn. Connections that arrive while
// the server shuts down get 421 and are closed here, never reaching goftp.
func (l *listener) Accept() (net.Conn, error) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		sess := newSession(l.srv, raw)
		if l.implicitTLS {
			// The handshake runs on the first read or write, in the session's goroutine.
			sess.conn.tls = tls.Server(raw, l.srv.cfg.TLS)
			sess.protP = true
		}
		if !l.srv.addSession(sess) {
			sess.reply(421, "Server shutting down")
			_ = raw.Close()
			continue
		}
		sess.log.Info("session start")
		sess.emit(djangoclient.Event{Type: djangoclient.EventConnect})
		return sess.conn, nil
	}
}

// controlConn is the control connection as goftp sees it. Its RemoteAddr carries the
// session, which is how commands find djftpd's state from goftp's *Session.
type controlConn struct {
	raw     net.Conn
	tls     *tls.Conn // set once TLS is negotiated; reads and writes then go through it
	sess    *session
	lineLen int // bytes of the current line read so far

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

func (c *controlConn) Read(p []byte) (int, error) {
	srv := c.sess.srv
	srv.stateMu.RLock()
	shutting := srv.shuttingDown
	if !shutting {
		_ = c.raw.SetReadDeadline(c.sess.readDeadline())
	}
	srv.stateMu.RUnlock()
	if shutting {
		c.sess.reply(421, "Server shutting down, closing control connection")
		return 0, io.EOF
	}

	n, err := c.readPending(p)
	if n == 0 && err == nil {
		n, err = c.stream().Read(p)
	}
	max := srv.cfg.MaxLineLength
	for _, b := range p[:n] {
		c.lineLen++
		if c.lineLen > max {
			c.sess.log.Warn("control line too long, closing", "limit", max)
			c.sess.reply(500, "Command line too long")
			return 0, errLineTooLong
		}
		if b == '\n' {
			c.lineLen = 0
		}
	}
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		srv.stateMu.RLock()
		shutting = srv.shuttingDown
		srv.stateMu.RUnlock()
		if shutting {
			c.sess.reply(421, "Server shutting down, closing control connection")
		} else {
			c.sess.log.Info("control connection timed out", "logged_in", c.sess.grant != nil)
			c.sess.reply(421, "Timeout, closing control connection")
		}
		return 0, io.EOF
	}
	return n, err
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
