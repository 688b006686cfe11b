// Package proxyproto reads the PROXY protocol header (haproxy.org proxy-protocol.txt, v1
// and v2) that a TCP balancer puts in front of a connection, for every listener of the
// sidecar (FTP control, SFTP).
package proxyproto

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

// V2Signature starts every v2 header.
var V2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// ErrHeader: the PROXY header is missing, malformed or not TCP.
var ErrHeader = errors.New("invalid PROXY protocol header")

const proxyV1MaxLen = 107 // including CRLF (spec section 2.1)

// ReadHeader reads one PROXY header from r. It returns the source address it
// names, or the zero AddrPort for LOCAL and UNKNOWN headers (use the real peer then).
func ReadHeader(r io.Reader) (netip.AddrPort, error) {
	head := make([]byte, 12)
	if _, err := io.ReadFull(r, head); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	if bytes.Equal(head, V2Signature) {
		return readProxyV2(r)
	}
	if !bytes.HasPrefix(head, []byte("PROXY ")) {
		return netip.AddrPort{}, fmt.Errorf("%w: no signature", ErrHeader)
	}
	line := append([]byte(nil), head...)
	b := make([]byte, 1)
	for !bytes.HasSuffix(line, []byte("\r\n")) {
		if len(line) >= proxyV1MaxLen {
			return netip.AddrPort{}, fmt.Errorf("%w: v1 header too long", ErrHeader)
		}
		if _, err := io.ReadFull(r, b); err != nil {
			return netip.AddrPort{}, fmt.Errorf("%w: %w", ErrHeader, err)
		}
		line = append(line, b[0])
	}
	return ParseV1(string(line[:len(line)-2]))
}

// ParseV1 parses "PROXY TCP4 src dst sport dport" (no CRLF).
func ParseV1(line string) (netip.AddrPort, error) {
	f := strings.Split(line, " ")
	if len(f) >= 2 && f[0] == "PROXY" && f[1] == "UNKNOWN" {
		return netip.AddrPort{}, nil
	}
	if len(f) != 6 || f[0] != "PROXY" || (f[1] != "TCP4" && f[1] != "TCP6") {
		return netip.AddrPort{}, fmt.Errorf("%w: malformed v1 line", ErrHeader)
	}
	src, err1 := netip.ParseAddr(f[2])
	dst, err2 := netip.ParseAddr(f[3])
	sport, err3 := parsePort(f[4])
	_, err4 := parsePort(f[5])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	if src.Zone() != "" || dst.Zone() != "" || (f[1] == "TCP4") != src.Is4() || src.Is4() != dst.Is4() {
		return netip.AddrPort{}, fmt.Errorf("%w: address family mismatch", ErrHeader)
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
		return netip.AddrPort{}, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	verCmd, famProto, n := hdr[0], hdr[1], binary.BigEndian.Uint16(hdr[2:])
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return netip.AddrPort{}, fmt.Errorf("%w: %w", ErrHeader, err)
	}
	if verCmd>>4 != 2 {
		return netip.AddrPort{}, fmt.Errorf("%w: version %d", ErrHeader, verCmd>>4)
	}
	switch verCmd & 0xf {
	case 0: // LOCAL: a health check of the proxy itself
		return netip.AddrPort{}, nil
	case 1: // PROXY
	default:
		return netip.AddrPort{}, fmt.Errorf("%w: command %d", ErrHeader, verCmd&0xf)
	}
	switch famProto {
	case 0x11: // TCP over IPv4
		if len(body) < 12 {
			return netip.AddrPort{}, fmt.Errorf("%w: short IPv4 addresses", ErrHeader)
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(body[:4])), binary.BigEndian.Uint16(body[8:])), nil
	case 0x21: // TCP over IPv6
		if len(body) < 36 {
			return netip.AddrPort{}, fmt.Errorf("%w: short IPv6 addresses", ErrHeader)
		}
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(body[:16])).Unmap(), binary.BigEndian.Uint16(body[32:])), nil
	case 0x00: // UNSPEC
		return netip.AddrPort{}, nil
	default:
		return netip.AddrPort{}, fmt.Errorf("%w: family/protocol %#x not TCP", ErrHeader, famProto)
	}
}

// The trust rule (DESIGN.md §10), the same for every listener: with PROXY on, a header is
// read only from a peer in the trusted prefixes, and must be there; any other peer is
// closed before anything is read from it, so no one reaching the port around the balancer
// can name an address. This is HAProxy's accept-proxy and SFTPGo's "required" mode.

// Trusted reports whether a PROXY header may be read from peer.
func Trusted(trusted []netip.Prefix, peer netip.Addr) bool {
	for _, p := range trusted {
		if p.Contains(peer) {
			return true
		}
	}
	return false
}

// ReadHeaderBy reads a PROXY header from c that must arrive before deadline; c's read
// deadline is cleared after.
func ReadHeaderBy(c net.Conn, deadline time.Time) (netip.AddrPort, error) {
	_ = c.SetReadDeadline(deadline)
	src, err := ReadHeader(c)
	_ = c.SetReadDeadline(time.Time{})
	return src, err
}
