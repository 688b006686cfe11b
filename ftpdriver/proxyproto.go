package ftpdriver

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The PROXY protocol (haproxy.org proxy-protocol.txt, v1 and v2), parsed by hand: the
// usual Go module is not available here. The header is read exactly, never past its
// end, because an implicit-TLS client sends its ClientHello right behind it.

var proxyV2Sig = []byte("\r\n\r\n\x00\r\nQUIT\n")

const proxyV1MaxLen = 107 // including CRLF (spec section 2.1)

// readProxyHeader reads one PROXY header from r. It returns the source address it
// names, or the zero AddrPort for LOCAL and UNKNOWN headers (use the real peer then).
func readProxyHeader(r io.Reader) (netip.AddrPort, error) {
	head := make([]byte, 12)
	if _, err := io.ReadFull(r, head); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	if bytes.Equal(head, proxyV2Sig) {
		return readProxyV2(r)
	}
	if !bytes.HasPrefix(head, []byte("PROXY ")) {
		return netip.AddrPort{}, fmt.Errorf("%w: no signature", errProxyHeader)
	}
	line := append([]byte(nil), head...)
	b := make([]byte, 1)
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if len(line) >= proxyV1MaxLen {
			return netip.AddrPort{}, fmt.Errorf("%w: v1 header too long", errProxyHeader)
		}
		if _, err := io.ReadFull(r, b); err != nil {
			return netip.AddrPort{}, fmt.Errorf("%w: %w", errProxyHeader, err)
		}
		line = append(line, b[0])
	}
	return parseProxyV1(string(line[:len(line)-2]))
}

// parseProxyV1 parses "PROXY TCP4 src dst sport dport" (no CRLF).
func parseProxyV1(line string) (netip.AddrPort, error) {
	f := strings.Split(line, " ")
	if len(f) >= 2 && f[0] == "PROXY" && f[1] == "UNKNOWN" {
		return netip.AddrPort{}, nil
	}
	if len(f) != 6 || f[0] != "PROXY" || (f[1] != "TCP4" && f[1] != "TCP6") {
		return netip.AddrPort{}, fmt.Errorf("%w: malformed v1 line", errProxyHeader)
	}
	src, err1 := netip.ParseAddr(f[2])
	dst, err2 := netip.ParseAddr(f[3])
	sport, err3 := parsePort(f[4])
	_, err4 := parsePort(f[5])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	if src.Zone() != "" || dst.Zone() != "" || (f[1] == "TCP4") != src.Is4() || src.Is4() != dst.Is4() {
		return netip.AddrPort{}, fmt.Errorf("%w: address family mismatch", errProxyHeader)
	}
	return netip.AddrPortFrom(src, sport), nil
}

// parsePort accepts a decimal port without sign or leading zeros.
func parsePort(s string) (uint16, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] == '+' || s[0] == '-' {
		return 0, errors.New("bad port")
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

func readProxyV2(r io.Reader) (netip.AddrPort, error) {
	hdr := make([]byte, 4)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	verCmd, famProto, n := hdr[0], hdr[1], binary.BigEndian.Uint16(hdr[2:])
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", errProxyHeader, err)
	}
	if verCmd>>4 != 2 {
		return netip.AddrPort{}, fmt.Errorf("%w: version %d", errProxyHeader, verCmd>>4)
	}
	switch verCmd & 0xf {
	case 0: // LOCAL: a health check of the proxy itself
		return netip.AddrPort{}, nil
	case 1: // PROXY
	default:
		return netip.AddrPort{}, fmt.Errorf("%w: command %d", errProxyHeader, verCmd&0xf)
	}
	switch famProto {
	case 0x11: // TCP over IPv4
		if len(body) < 12 {
			return netip.AddrPort{}, fmt.Errorf("%w: short IPv4 addresses", errProxyHeader)
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[:4])), binary.BigEndian.Uint16(body[8:])), nil
	case 0x21: // TCP over IPv6
		if len(body) < 36 {
			return netip.AddrPort{}, fmt.Errorf("%w: short IPv6 addresses", errProxyHeader)
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[:16])).Unmap(), binary.BigEndian.Uint16(body[32:])), nil
	case 0x00: // UNSPEC
		return netip.AddrPort{}, nil
	default:
		return netip.AddrPort{}, fmt.Errorf("%w: family/protocol %#x not TCP", errProxyHeader, famProto)
	}
}

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
