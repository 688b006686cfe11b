package ftpdriver

import (
	"fmt"
	"net"
	"time"

	"github.com/djftpd/djftpd/internal/proxyproto"
)

// The header parser and the trust rule are shared with the SFTP listener
// (internal/proxyproto).

// proxiedConn is a connection whose client address came from a PROXY header.
type proxiedConn struct {
	net.Conn
	client net.Addr
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.client }

// The PROXY trust rule (proxyproto.Trusted) decides on the peer address alone, which
// works because an FTP client waits for the greeting.

// acceptProxied applies the trust rule to a new control connection. It returns the
// connection to serve (its RemoteAddr is the client's); ok is false when the connection
// was refused and closed.
func (s *Server) acceptProxied(raw net.Conn) (c net.Conn, ok bool) {
	if !s.cfg.ProxyProtocol {
		return raw, true
	}
	if !proxyproto.Trusted(s.cfg.ProxyTrusted, addrOf(raw.RemoteAddr())) {
		s.refuseProxied(raw, "untrusted_peer", nil)
		return nil, false
	}
	src, err := proxyproto.ReadHeaderBy(raw, time.Now().Add(proxyHeaderTimeout))
	if err != nil {
		s.refuseProxied(raw, "bad_proxy_header", err)
		return nil, false
	}
	if !src.IsValid() { // LOCAL or UNKNOWN: the balancer itself, e.g. a health check
		return raw, true
	}
	return &proxiedConn{Conn: raw, client: net.TCPAddrFromAddrPort(src)}, true
}

// refuseProxied counts a control connection that broke the trust rule, logs it at WARN,
// at most once a second (a flood must not flood the log), and closes it: in that order, so
// that whoever sees the close sees the count and the log line too.
func (s *Server) refuseProxied(raw net.Conn, reason string, err error) {
	s.cfg.Metrics.connsRefused.WithLabelValues(reason).Inc()
	if ok, suppressed := s.proxyWarn.Allow(time.Now()); ok {
		s.log.Warn("connection closed by the PROXY trust rule (DJFTPD_PROXY_TRUSTED)",
			"reason", reason, "from", raw.RemoteAddr().String(), "err", err, "suppressed_since_last", suppressed)
	}
	_ = raw.Close()
}

// checkDataPeer applies the trust rule to a passive data connection: one from a
// trusted balancer must start with a header naming the session's client (read before
// deadline); any other must come from the client's own address.
func (s *session) checkDataPeer(c net.Conn, deadline time.Time) error {
	from := addrOf(c.RemoteAddr())
	if !s.srv.cfg.ProxyProtocol || !proxyproto.Trusted(s.srv.cfg.ProxyTrusted, from) {
		if from != s.peer {
			return errForeignData
		}
		return nil
	}
	if d := time.Now().Add(proxyHeaderTimeout); d.Before(deadline) {
		deadline = d
	}
	src, err := proxyproto.ReadHeaderBy(c, deadline)
	if err != nil {
		return err
	}
	if src.Addr() != s.peer {
		return fmt.Errorf("%w: PROXY header names %v", errForeignData, src)
	}
	return nil
}
