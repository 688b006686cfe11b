package ftpdriver

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The data channel is djftpd's own (DESIGN.md §8): goftp's wraps every data connection
// in a rate limiter, which hides the *net.TCPConn from sendfile and splice, binds its
// passive listener on every interface, and accepts data connections from any address
// and active targets on any host (FTP bounce).

func (s *session) closePendingData() {
	if s.pasvExpiry != nil {
		s.pasvExpiry.Stop()
		s.pasvRelease()
		s.pasvExpiry, s.pasvRelease = nil, nil
	}
	if s.pasv != nil {
		_ = s.pasv.Close()
		s.pasv = nil
	}
	s.active = netip.AddrPort{}
}

// listenPassive binds a listener on the control connection's local address, on a port
// from the configured range, starting at a random one. It is plain TCP: Go listens with
// MPTCP by default, whose extra kernel socket made each EPSV cost ~20 µs more CPU
// (bench/README.md, issue 18 item 2) for a connection that carries one transfer from one
// address (accepted connections fell back to TCP anyway).
func (s *session) listenPassive() (net.Listener, error) {
	s.closePendingData()
	local, err := netip.ParseAddrPort(s.conn.raw.LocalAddr().String())
	if err != nil {
		return nil, fmt.Errorf("control local address: %w", err)
	}
	var lc net.ListenConfig
	lc.SetMultipathTCP(false)
	lo, hi := s.srv.cfg.PassivePortMin, s.srv.cfg.PassivePortMax
	n := hi - lo + 1
	start := rand.IntN(n)
	for i := range n {
		port := lo + (start+i)%n
		addr := net.JoinHostPort(local.Addr().Unmap().String(), strconv.Itoa(port))
		ln, err := lc.Listen(s.ctx(), "tcp", addr)
		if err == nil {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("no free passive port in %d-%d", lo, hi)
}

func (s *session) handlePASV(string) {
	announce := s.srv.cfg.PublicHost.Unmap()
	if announce.IsValid() && !announce.Is4() {
		// RFC 959's PASV reply has room for IPv4 only; EPSV (RFC 2428) announces a port.
		s.reply(425, "PASV cannot announce this server's IPv6 address; use EPSV")
		return
	}
	if !announce.IsValid() {
		local, err := netip.ParseAddrPort(s.conn.raw.LocalAddr().String())
		if err != nil || !local.Addr().Unmap().Is4() {
			s.reply(425, "PASV needs IPv4; use EPSV")
			return
		}
		announce = local.Addr().Unmap()
	}
	port, ok := s.openPassive()
	if !ok {
		return
	}
	ip := announce.As4()
	s.reply(227, fmt.Sprintf("Entering Passive Mode (%d,%d,%d,%d,%d,%d)",
		ip[0], ip[1], ip[2], ip[3], port>>8, port&0xff))
}

// epsvArg is what an EPSV argument asks for (RFC 2428 section 3).
type epsvArg int

const (
	epsvOpen    epsvArg = iota // open a passive listener (no argument, "1" or "2")
	epsvAll                    // "ALL": only EPSV from now on
	epsvBadProt                // an unknown network protocol: 522
)

// parseEPSV parses an EPSV argument. The protocol number must match the control
// connection's family for the client to reach the port; djftpd listens on the control
// connection's own address, so either number is answered with that address's port.
func parseEPSV(param string) epsvArg {
	switch strings.ToUpper(strings.TrimSpace(param)) {
	case "", "1", "2":
		return epsvOpen
	case "ALL":
		return epsvAll
	default:
		return epsvBadProt
	}
}

func (s *session) handleEPSV(param string) {
	switch parseEPSV(param) {
	case epsvAll:
		s.reply(200, "EPSV ALL ok")
		return
	case epsvBadProt:
		s.reply(522, "Network protocol not supported, use (1,2)")
		return
	}
	if port, ok := s.openPassive(); ok {
		s.reply(229, fmt.Sprintf("Entering Extended Passive Mode (|||%d|)", port))
	}
}

// openPassive sets up the passive listener for the next transfer and returns its
// port; on failure it has answered 425. The listener counts toward the address's
// MaxPassivePerIP and is closed after DataTimeout if no transfer uses it, so passive
// ports cannot be hoarded.
func (s *session) openPassive() (int, bool) {
	s.closePendingData() // this session's previous listener gives its slot back first
	release, err := s.srv.pasv.acquire(s.peer, s.srv.cfg.MaxPassivePerIP)
	if err != nil {
		s.log.Warn("passive listener refused", "err", err, "max", s.srv.cfg.MaxPassivePerIP)
		s.reply(replyFor(err))
		return 0, false
	}
	ln, err := s.listenPassive()
	if err != nil {
		release()
		s.log.Warn("passive listen failed", "err", err)
		s.reply(425, "Cannot open passive connection")
		return 0, false
	}
	s.pasv, s.pasvRelease = ln, release
	s.pasvExpiry = time.AfterFunc(s.srv.cfg.DataTimeout, func() {
		_ = ln.Close()
		release()
	})
	return ln.Addr().(*net.TCPAddr).Port, true
}

// parsePORT parses RFC 959's "h1,h2,h3,h4,p1,p2".
func parsePORT(param string) (netip.AddrPort, error) {
	fields := strings.Split(strings.TrimSpace(param), ",")
	if len(fields) != 6 {
		return netip.AddrPort{}, errBadHostPort
	}
	var b [6]byte
	for i, f := range fields {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 8)
		if err != nil {
			return netip.AddrPort{}, errBadHostPort
		}
		b[i] = byte(n)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), uint16(b[4])<<8|uint16(b[5])), nil
}

// parseEPRT parses RFC 2428's "<d>proto<d>address<d>port<d>".
func parseEPRT(param string) (netip.AddrPort, error) {
	param = strings.TrimSpace(param)
	if len(param) < 7 || param[0] < 33 || param[0] > 126 {
		return netip.AddrPort{}, errBadHostPort
	}
	parts := strings.Split(param[1:], param[:1])
	if len(parts) != 4 || parts[3] != "" {
		return netip.AddrPort{}, errBadHostPort
	}
	addr, err := netip.ParseAddr(parts[1])
	if err != nil || addr.Zone() != "" {
		return netip.AddrPort{}, errBadHostPort
	}
	switch {
	case parts[0] == "1" && addr.Is4(), parts[0] == "2" && addr.Is6() && !addr.Is4In6():
	default:
		return netip.AddrPort{}, errBadHostPort
	}
	port, err := strconv.ParseUint(parts[2], 10, 16)
	if err != nil || port == 0 {
		return netip.AddrPort{}, errBadHostPort
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// checkActiveTarget refuses FTP bounce: only the control peer, only ports ≥ 1024.
func (s *session) checkActiveTarget(ap netip.AddrPort) error {
	if ap.Addr().Unmap() != s.peer || ap.Port() < 1024 {
		return errBounce
	}
	return nil
}

func (s *session) handlePORT(param string) { s.setActive("PORT", param, parsePORT) }
func (s *session) handleEPRT(param string) { s.setActive("EPRT", param, parseEPRT) }

func (s *session) setActive(cmd, param string, parse func(string) (netip.AddrPort, error)) {
	ap, err := parse(param)
	if err != nil {
		s.reply(501, "Syntax error in "+cmd+" argument")
		return
	}
	if err := s.checkActiveTarget(ap); err != nil {
		s.log.Warn("active data connection refused", "cmd", cmd, "target", ap.String(), "err", err)
		s.reply(500, "Illegal "+cmd+" command: data connection must go to your own address, port 1024 or above")
		return
	}
	s.closePendingData()
	s.active = ap
	s.reply(200, cmd+" command successful")
}

// openData opens the data connection announced by the last PASV/EPSV/PORT/EPRT. A
// passive connection from another address than the control peer is dropped and the
// wait goes on until DataTimeout.
func (s *session) openData() (net.Conn, error) {
	defer s.closePendingData()
	deadline := time.Now().Add(s.srv.cfg.DataTimeout)
	switch {
	case s.pasv != nil:
		tl := s.pasv.(*net.TCPListener)
		if err := tl.SetDeadline(deadline); err != nil {
			return nil, fmt.Errorf("passive deadline: %w", err)
		}
		for {
			c, err := tl.AcceptTCP()
			if err != nil {
				return nil, fmt.Errorf("passive accept: %w", err)
			}
			err = s.checkDataPeer(c, deadline)
			if err == nil {
				return c, nil
			}
			s.log.Warn("passive data connection dropped", "from", c.RemoteAddr().String(), "err", err)
			_ = c.Close()
		}
	case s.active.IsValid():
		d := net.Dialer{Deadline: deadline}
		c, err := d.Dial("tcp", s.active.String())
		if err != nil {
			return nil, fmt.Errorf("active connect: %w", err)
		}
		return c, nil
	default:
		return nil, errNoDataChannel
	}
}

// withData answers 150, opens the data connection, runs fn on it and closes it. It
// returns errNoDataChannel or errTLSRequired (before any reply) when the data channel
// is not set up, errDataOpen when the connection could not be opened, errAborted or
// errPeerGone when ABOR arrived or the client went away (watch.go), else fn's error.
// settle is how long to look for a vanished client after the data ended.
func (s *session) withData(prelim string, settle time.Duration, fn func(c net.Conn) error) error {
	if s.pasv == nil && !s.active.IsValid() {
		return errNoDataChannel
	}
	if s.srv.cfg.TLSMode == TLSRequired && !s.protP {
		s.closePendingData()
		return errTLSRequired
	}
	s.reply(150, prelim)
	c, err := s.openData()
	raw := c
	if err == nil {
		var sc net.Conn
		if sc, err = s.secureData(c); err != nil {
			_ = c.Close()
		}
		c = sc
	}
	if err != nil {
		return fmt.Errorf("%w: %w", errDataOpen, err)
	}
	s.setDataConn(c)
	defer s.setDataConn(nil)
	stall := watchStall(raw, s.srv.cfg.DataTimeout, func() { _ = raw.Close() })
	w := s.conn.watchTransfer(func() { _ = c.Close() })
	err = fn(c)
	if stall.stop() && err != nil {
		err = fmt.Errorf("%w: %w", errDataStalled, err)
	}
	switch aborted, gone := w.stop(settle); {
	case aborted:
		err = errAborted
	case gone:
		err = errPeerGone
	}
	// A close error says nothing about the data: the client may already have closed
	// its end (and a TLS close_notify then has nowhere to go).
	if cerr := c.Close(); cerr != nil {
		s.log.Debug("close data connection", "err", cerr)
	}
	return err
}

// uploadSettle is how long, after an upload's data ended, a closed control connection
// is looked for: a killed client's data connection ends like a complete upload, but its
// control connection closes at the same moment, and then the upload is discarded.
const uploadSettle = 5 * time.Millisecond

func (s *session) handleABOR(string) {
	s.closePendingData()
	s.reply(225, "No transfer to abort")
}
