package ftpdriver

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"time"

	"github.com/djftpd/djftpd/internal/proxyproto"
)

// The header parser is shared with the SFTP listener (internal/proxyproto).
var proxyV2Sig = proxyproto.V2Signature

// readProxyHeader reads one PROXY header from r (proxyproto.ReadHeader).
func readProxyHeader(r io.Reader) (netip.AddrPort, error) { return proxyproto.ReadHeader(r) }

// parseProxyV1 parses "PROXY TCP4 src dst sport dport" (no CRLF).
func parseProxyV1(line string) (netip.AddrPort, error) { return proxyproto.ParseV1(line) }

// proxiedConn is a connection whose client address came from a PROXY header.
type proxiedConn struct {
	net.Conn
	client net.Addr
}

func (c *proxiedConn) RemoteAddr() net.Addr { return c.client }

// The PROXY trust rule (DESIGN.md §10). With PROXY on, the port belongs to the
// balancer: a header is read only from a peer in Config.ProxyTrusted, and must be
// there; any other peer is closed before the greeting without a byte read from it, so
// no one reaching the port around the balancer can name an address. This is HAProxy's
// accept-proxy and SFTPGo's "required" mode; the decision takes the peer address
// alone, which works because an FTP client waits for the greeting.

// proxyTrusted reports whether a PROXY header may be read from peer.
func (s *Server) proxyTrusted(peer netip.Addr) bool {
	for _, p := range s.cfg.ProxyTrusted {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// acceptProxied applies the trust rule to a new control connection. It returns the
// connection to serve (its RemoteAddr is the client's) and the proxy's address when a
// header named the client; ok is false when the connection was refused and closed.
func (s *Server) acceptProxied(raw net.Conn) (c net.Conn, proxy netip.Addr, ok bool) {
	if !s.cfg.ProxyProtocol {
		return raw, netip.Addr{}, true
	}
	peer := addrOf(raw.RemoteAddr())
	if !s.proxyTrusted(peer) {
		s.refuseProxied(raw, "untrusted_peer", nil)
		return nil, netip.Addr{}, false
	}
	src, err := readProxyHeaderBy(raw, time.Now().Add(proxyHeaderTimeout))
	if err != nil {
		s.refuseProxied(raw, "bad_proxy_header", err)
		return nil, netip.Addr{}, false
	}
	if !src.IsValid() { // LOCAL or UNKNOWN: the balancer itself, e.g. a health check
		return raw, netip.Addr{}, true
	}
	return &proxiedConn{Conn: raw, client: net.TCPAddrFromAddrPort(src)}, peer, true
}

// refuseProxied closes a control connection that broke the trust rule, counts it and
// logs it at WARN, at most once a second (a flood must not flood the log).
func (s *Server) refuseProxied(raw net.Conn, reason string, err error) {
	_ = raw.Close()
	s.cfg.Metrics.connsRefused.WithLabelValues(reason).Inc()
	if ok, suppressed := s.proxyWarn.Allow(time.Now()); ok {
		s.log.Warn("connection closed by the PROXY trust rule (DJFTPD_PROXY_TRUSTED)",
			"reason", reason, "from", raw.RemoteAddr().String(), "err", err, "suppressed_since_last", suppressed)
	}
}

// readProxyHeaderBy reads a PROXY header that must arrive before deadline.
func readProxyHeaderBy(c net.Conn, deadline time.Time) (netip.AddrPort, error) {
	_ = c.SetReadDeadline(deadline)
	src, err := readProxyHeader(c)
	_ = c.SetReadDeadline(time.Time{})
	return src, err
}

// checkDataPeer applies the trust rule to a passive data connection: one from a
// trusted balancer must start with a header naming the session's client (read before
// deadline); any other must come from the client's own address.
func (s *session) checkDataPeer(c net.Conn, deadline time.Time) error {
	from := addrOf(c.RemoteAddr())
	if !s.srv.cfg.ProxyProtocol || !s.srv.proxyTrusted(from) {
		if from != s.peer {
			return errForeignData
		}
		return nil
	}
	if d := time.Now().Add(proxyHeaderTimeout); d.Before(deadline) {
		deadline = d
	}
	src, err := readProxyHeaderBy(c, deadline)
	if err != nil {
		return err
	}
	if src.Addr() != s.peer {
		return fmt.Errorf("%w: PROXY header names %v", errForeignData, src)
	}
	return nil
}
