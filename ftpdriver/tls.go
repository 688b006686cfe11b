package ftpdriver

import (
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// TLSMode says how FTPS is offered (DESIGN.md §4).
type TLSMode string

// The TLS modes.
const (
	TLSOff      TLSMode = "off"      // plain FTP only
	TLSExplicit TLSMode = "explicit" // AUTH TLS offered, plain FTP allowed
	TLSRequired TLSMode = "required" // AUTH TLS before USER/PASS, PROT P before data
	TLSImplicit TLSMode = "implicit" // explicit on the control listener, plus ServeImplicit
)

// CertReloader serves a certificate loaded from files and replaced by Reload (on
// SIGHUP), so a renewed certificate needs no restart.
type CertReloader struct {
	certFile, keyFile string
	cert              atomic.Pointer[tls.Certificate]
}

// NewCertReloader loads the key pair once; an unreadable pair is an error.
func NewCertReloader(certFile, keyFile string) (*CertReloader, error) {
	r := &CertReloader{certFile: certFile, keyFile: keyFile}
	if err := r.Reload(); err != nil {
		return nil, err
	}
	return r, nil
}

// Reload reads the key pair again. On error the previous certificate stays in use.
func (r *CertReloader) Reload() error {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS key pair: %w", err)
	}
	r.cert.Store(&cert)
	return nil
}

// TLSConfig is the server configuration for control and data connections: TLS 1.2+,
// session tickets on, so data connections can resume the control connection's session.
func (r *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cert.Load(), nil
		},
	}
}

// tlsHandshakeTimeout bounds a TLS handshake on a data connection.
const tlsHandshakeTimeout = 15 * time.Second

// defaultTLSHandshakeTimeout is Config.TLSHandshakeTimeout's default.
const defaultTLSHandshakeTimeout = 10 * time.Second

// handshakeDeadline bounds a control connection's TLS handshake (and a refusal at
// connect): Config.TLSHandshakeTimeout from now, and never past the login deadline.
func (s *session) handshakeDeadline() time.Time {
	d := time.Now().Add(s.srv.cfg.TLSHandshakeTimeout)
	if login := s.connectedAt.Add(s.srv.cfg.LoginTimeout); s.grant == nil && login.Before(d) {
		return login
	}
	return d
}

// handshake completes implicit FTPS's handshake, if the connection has one pending.
func (c *controlConn) handshake() error {
	if c.tls == nil {
		return nil
	}
	_ = c.raw.SetDeadline(c.sess.handshakeDeadline())
	err := c.tls.Handshake()
	_ = c.raw.SetDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("implicit TLS handshake: %w", err)
	}
	return nil
}

// upgrade turns the control connection into TLS after "234". goftp keeps reading
// through controlConn, which now reads and writes through the TLS connection.
func (c *controlConn) upgrade(cfg *tls.Config) error {
	tc := tls.Server(c.raw, cfg)
	_ = c.raw.SetDeadline(c.sess.handshakeDeadline())
	err := tc.Handshake()
	_ = c.raw.SetDeadline(time.Time{})
	if err != nil {
		return fmt.Errorf("control TLS handshake: %w", err)
	}
	c.writeMu.Lock()
	c.tls = tc
	c.writeMu.Unlock()
	return nil
}

// stream is what control reads and writes go through: TLS once negotiated.
func (c *controlConn) stream() net.Conn {
	if c.tls != nil {
		return c.tls
	}
	return c.raw
}

func (s *session) tlsEnabled() bool { return s.srv.cfg.TLSMode != TLSOff && s.srv.cfg.TLS != nil }

func (s *session) handleAUTH(param string) {
	switch p := strings.ToUpper(strings.TrimSpace(param)); {
	case !s.tlsEnabled():
		s.reply(502, "TLS is not configured")
	case p != "TLS" && p != "SSL" && p != "TLS-C":
		s.reply(504, "AUTH "+p+" not supported; use AUTH TLS")
	case s.conn.tls != nil:
		s.reply(503, "Already using TLS")
	case s.conn.pendingInput():
		// Plain text sent behind AUTH TLS would run as if it came over TLS (RFC 7457
		// §2.2, the STARTTLS command injection). vsftpd's answer: end the connection.
		s.log.Warn("commands sent behind AUTH TLS before the handshake, closing")
		s.reply(421, "Nothing may follow AUTH TLS before the TLS handshake")
		s.endReason = "tls_refused"
		s.close()
	default:
		s.reply(234, "AUTH TLS successful")
		if err := s.conn.upgrade(s.sessionTLS()); err != nil {
			s.log.Info("TLS handshake failed", "err", err)
			s.endReason = "tls_failed"
			s.close()
		}
	}
}

func (s *session) handlePBSZ(string) {
	if s.conn.tls == nil {
		s.reply(503, "PBSZ needs AUTH TLS first")
		return
	}
	// RFC 4217 §9: TLS has no buffer size; any value is answered with 0.
	s.reply(200, "PBSZ=0")
}

func (s *session) handlePROT(param string) {
	if s.conn.tls == nil {
		s.reply(503, "PROT needs AUTH TLS first")
		return
	}
	switch strings.ToUpper(strings.TrimSpace(param)) {
	case "P":
		s.protP = true
		s.reply(200, "Data channel protection level set to P")
	case "C":
		if s.srv.cfg.TLSMode == TLSRequired {
			s.reply(534, "Data channel must be protected (PROT P)")
			return
		}
		s.protP = false
		s.reply(200, "Data channel protection level set to C")
	default:
		s.reply(504, "PROT level not supported; use P or C")
	}
}

// sessionTLS is the TLS configuration of this session's control and data connections:
// the server's (its GetCertificate follows reloads), with a session ticket key of its
// own, so only a ticket issued on this session's connections resumes on its data
// connections; a ticket of another session is not decrypted and gives a full handshake.
func (s *session) sessionTLS() *tls.Config {
	if s.tlsConf == nil {
		c := s.srv.cfg.TLS.Clone()
		var key [32]byte
		_, _ = rand.Read(key[:])
		c.SetSessionTicketKeys([][32]byte{key})
		s.tlsConf = c
	}
	return s.tlsConf
}

// secureData wraps a data connection in TLS when PROT P is set; the client is the TLS
// client on data connections too, whichever side connected (RFC 4217 §7). The data
// connection must resume the control connection's session (sessionTLS binds tickets to
// the session), which proves it comes from the client that logged in.
func (s *session) secureData(c net.Conn) (net.Conn, error) {
	if !s.protP {
		return c, nil
	}
	tc := tls.Server(c, s.sessionTLS())
	_ = c.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("data TLS handshake: %w", err)
	}
	_ = c.SetDeadline(time.Time{})
	if !tc.ConnectionState().DidResume {
		return nil, errTLSNotResumed
	}
	return tc, nil
}
