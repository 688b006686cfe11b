package sftpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/internal/acceptretry"
	"github.com/djftpd/djftpd/internal/loglimit"
	"github.com/djftpd/djftpd/internal/proxyproto"
)

// Config configures a Server. Build it as a literal.
type Config struct {
	HostKeys      []ssh.Signer  // at least one (LoadHostKeys)
	PasswordAuth  bool          // offer password authentication
	PublicKeyAuth bool          // offer public-key authentication
	LoginTimeout  time.Duration // from connect to the end of authentication; 0: none
	IdleTimeout   time.Duration // close a session that sends nothing this long; 0: never
	AtomicUploads bool          // uploads that replace a file write a temporary file first
	Log           *slog.Logger  // nil: discard
	// ProxyProtocol expects a PROXY header (v1 or v2) from every peer, which must be in
	// ProxyTrusted: any other peer is closed unread, as on the FTP listener (DESIGN.md §10).
	ProxyProtocol bool
	ProxyTrusted  []netip.Prefix
	// AcceptError, if set, counts a failed accept that is waited out (out of descriptors).
	AcceptError func()

	parkAfter time.Duration // 0: defaultParkAfter; tests shorten it
	corkWait  time.Duration // 0: defaultCorkWait; tests lengthen it
}

// Algorithms offered: modern only. No SHA-1 key exchange, MAC or RSA signature, no CBC.
// No chacha20-poly1305 either: the client's preference decides and OpenSSH's clients put it
// first, but x/crypto/ssh has no assembly for it on amd64, where it cost the server ~40 %
// more CPU per download than AES-CTR (their next choice) or AES-GCM (bench/README.md).
var (
	kexAlgorithms = []string{ssh.KeyExchangeMLKEM768X25519, ssh.KeyExchangeCurve25519, ssh.KeyExchangeECDHP256,
		ssh.KeyExchangeECDHP384, ssh.KeyExchangeECDHP521, ssh.KeyExchangeDH16SHA512, ssh.KeyExchangeDH14SHA256}
	ciphers = []string{ssh.CipherAES128GCM, ssh.CipherAES256GCM,
		ssh.CipherAES128CTR, ssh.CipherAES192CTR, ssh.CipherAES256CTR}
	macs            = []string{ssh.HMACSHA256ETM, ssh.HMACSHA512ETM, ssh.HMACSHA256, ssh.HMACSHA512}
	userKeyAlgorims = []string{ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384,
		ssh.KeyAlgoECDSA521, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSASHA512}
)

// maxAuthTries bounds authentication requests per connection, key offers included (an agent
// may hold several keys); failed passwords are bounded by the core's own attempt count.
const maxAuthTries = 10

// publicKeyExtension carries an accepted key from PublicKeyCallback to the login.
const publicKeyExtension = "djftpd-public-key"

// Server serves SFTP over SSH. It is safe for concurrent use; every connection runs in a
// goroutine the Server owns and waits for in Shutdown.
type Server struct {
	cfg  Config
	gate Gate
	log  *slog.Logger

	baseCtx context.Context
	cancel  context.CancelFunc

	mu       sync.Mutex
	conns    map[net.Conn]*connState
	lns      map[net.Listener]struct{}
	closing  bool
	stopped  chan struct{} // closed with closing set: ends an accept back-off
	sessions sync.WaitGroup
	active   atomic.Int64
}

// New returns a Server over gate.
func New(cfg Config, gate Gate) (*Server, error) {
	if len(cfg.HostKeys) == 0 {
		return nil, errors.New("sftpd: no host key")
	}
	if !cfg.PasswordAuth && !cfg.PublicKeyAuth {
		return nil, errors.New("sftpd: neither password nor public-key authentication enabled")
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.parkAfter == 0 {
		cfg.parkAfter = defaultParkAfter
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{cfg: cfg, gate: gate, log: cfg.Log, baseCtx: ctx, cancel: cancel,
		conns: map[net.Conn]*connState{}, lns: map[net.Listener]struct{}{}, stopped: make(chan struct{})}, nil
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("sftpd: server closed")

// Serve accepts connections on ln until Shutdown; it closes ln. A failed accept that
// passes (out of file descriptors) is waited out with a back-off, never returned.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	s.lns[ln] = struct{}{}
	s.mu.Unlock()
	defer ln.Close()
	backoff := s.acceptBackoff()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if backoff.Wait(err) {
				continue
			}
			if s.isClosing() {
				return ErrServerClosed
			}
			return fmt.Errorf("sftpd: accept: %w", err)
		}
		backoff.Reset()
		cs := &connState{}
		if !s.track(nc, cs) {
			nc.Close()
			return ErrServerClosed
		}
		go s.handle(nc, cs)
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// acceptBackoff is one Serve loop's back-off: it ends early at Shutdown, counts each
// failure and logs it at WARN at most once a second.
func (s *Server) acceptBackoff() *acceptretry.Backoff {
	warn := &loglimit.Limiter{Interval: time.Second}
	return &acceptretry.Backoff{Done: s.stopped, OnRetry: func(err error, wait time.Duration) {
		if s.cfg.AcceptError != nil {
			s.cfg.AcceptError()
		}
		if ok, suppressed := warn.Allow(time.Now()); ok {
			s.log.Warn("accept failed, retrying (too many open files? raise the descriptor limit)",
				"err", err, "retry_in", wait, "suppressed_since_last", suppressed)
		}
	}}
}

// connState is what Shutdown needs to know of a connection: whether it logged in, and how
// many files it has open (a transfer in progress).
type connState struct {
	loggedIn atomic.Bool
	open     atomic.Int64
	conn     Conn // the core's, once admitted; under Server.mu
}

// drainable: not logged in, or no file open; such a connection is closed at once by
// Shutdown.
func (c *connState) drainable() bool { return !c.loggedIn.Load() || c.open.Load() == 0 }

// drainPoll is how often Shutdown looks for sessions whose transfers have ended.
const drainPoll = 50 * time.Millisecond

// track registers a connection; false once shutting down.
func (s *Server) track(nc net.Conn, cs *connState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[nc] = cs
	s.sessions.Add(1)
	return true
}

func (s *Server) untrack(nc net.Conn) {
	s.mu.Lock()
	delete(s.conns, nc)
	s.mu.Unlock()
	nc.Close()
	s.sessions.Done()
}

// Shutdown stops accepting, closes the connections that are not logged in or have no file
// open, and lets the others finish their transfers (each is closed as soon as it has no
// file open) until ctx is done; then it closes the rest (their open uploads are discarded,
// as on any cut connection) and returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing {
		close(s.stopped)
	}
	s.closing = true
	for ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.sessions.Wait()
		close(done)
	}()
	tick := time.NewTicker(drainPoll)
	defer tick.Stop()
	for {
		s.closeConns(false)
		select {
		case <-done:
			s.cancel()
			return nil
		case <-tick.C:
			continue
		case <-ctx.Done():
		}
		break
	}
	s.cancel()
	s.closeConns(true)
	<-done
	return ctx.Err()
}

// closeConns closes the drainable connections, or all of them.
func (s *Server) closeConns(all bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for nc, cs := range s.conns {
		if all || cs.drainable() {
			nc.Close()
		}
	}
}

// Conns lists the admitted connections, for the live sessions page.
func (s *Server) Conns() []Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Conn, 0, len(s.conns))
	for _, cs := range s.conns {
		if cs.conn != nil {
			out = append(out, cs.conn)
		}
	}
	return out
}

// CloseConns closes the admitted connections match selects (an administrator's request);
// their open uploads are discarded, as on any cut connection. It returns how many.
func (s *Server) CloseConns(match func(Conn) bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for nc, cs := range s.conns {
		if cs.conn != nil && match(cs.conn) {
			nc.Close()
			n++
		}
	}
	return n
}

// Active is the number of open connections.
func (s *Server) Active() int64 { return s.active.Load() }

// handle runs one connection: admission, the SSH handshake with authentication through the
// core, then its session channels.
func (s *Server) handle(nc net.Conn, cs *connState) {
	defer s.untrack(nc)
	s.active.Add(1)
	defer s.active.Add(-1)
	if s.cfg.LoginTimeout > 0 {
		_ = nc.SetDeadline(time.Now().Add(s.cfg.LoginTimeout))
	}
	peer := addrPort(nc.RemoteAddr())
	if s.cfg.ProxyProtocol {
		var err error
		if peer, err = s.readProxy(nc, peer); err != nil {
			s.log.Warn("SFTP connection refused", "peer", peer.String(), "err", err)
			return
		}
	}
	c, err := s.gate.Admit(peer)
	if err != nil {
		s.log.Info("SFTP connection refused", "client", peer.String(), "err", err)
		return
	}
	defer c.Close()
	s.mu.Lock()
	cs.conn = c
	s.mu.Unlock()
	ic := &idleConn{Conn: nc}
	ic.cork.wait = s.cfg.corkWait
	defer ic.stopCork()
	st := &authState{}
	sconn, chans, reqs, err := ssh.NewServerConn(ic, s.serverConfig(c, nc, st))
	if err != nil {
		if u := st.take(); u != nil {
			u.Close()
		}
		s.log.Debug("SSH handshake ended", "client", peer.String(), "err", err)
		return
	}
	defer sconn.Close()
	user := st.take()
	if user == nil { // unreachable: authentication succeeded only through a Login
		return
	}
	defer user.Close()
	cs.loggedIn.Store(true)
	_ = nc.SetDeadline(time.Time{})
	ic.setIdle(s.cfg.IdleTimeout)
	s.serveConn(chans, reqs, user, &cs.open, ic)
}

// serveConn answers, in the connection's goroutine, all the connection asks of the server:
// global requests (port forwarding...) are refused, channels other than "session" rejected,
// and the requests of a session channel answered (only "subsystem sftp" is accepted). Only
// the SFTP server runs in a goroutine of its own, so an idle session (its request server
// parked: park.go) costs djftpd two goroutines, not one per request stream. A second
// session channel at once (a multiplexing client) gets a goroutine for its requests.
// serveConn returns when the connection ends, once the SFTP servers it started have returned.
func (s *Server) serveConn(chans <-chan ssh.NewChannel, reqs <-chan *ssh.Request, user User, open *atomic.Int64, ic *idleConn) {
	var wg sync.WaitGroup
	defer wg.Wait()
	var cur *sessionChan // the session channel answered here; nil: none open
	defer func() {
		if cur != nil {
			cur.closed()
		}
	}()
	for {
		var curReqs <-chan *ssh.Request
		var curDone <-chan struct{}
		if cur != nil {
			curReqs, curDone = cur.reqs, cur.done
		}
		select {
		case nch, ok := <-chans:
			if !ok {
				return
			}
			ss := s.accept(nch, user, open, &wg)
			if ss != nil {
				ss.ic = ic
			}
			switch {
			case ss == nil:
			case cur == nil:
				cur = ss
			default:
				wg.Add(1)
				go func() {
					defer wg.Done()
					ss.serve()
				}()
			}
		case req, ok := <-reqs:
			if !ok {
				reqs = nil
			} else if req.WantReply {
				_ = req.Reply(false, nil)
			}
		case req, ok := <-curReqs:
			if !ok {
				cur.closed()
				cur = nil
				continue
			}
			cur.answer(req)
		case <-curDone:
			cur.finish()
		}
	}
}

// accept accepts a session channel; other channel types are rejected (nil).
func (s *Server) accept(nch ssh.NewChannel, user User, open *atomic.Int64, wg *sync.WaitGroup) *sessionChan {
	if nch.ChannelType() != "session" {
		_ = nch.Reject(ssh.Prohibited, "only the sftp subsystem is offered")
		return nil
	}
	ch, reqs, err := nch.Accept()
	if err != nil {
		return nil
	}
	return &sessionChan{s: s, ch: ch, reqs: reqs, user: user, open: open, wg: wg}
}

// sessionChan is one session channel: its requests, and its SFTP server once started. Its
// fields belong to the goroutine answering its requests.
type sessionChan struct {
	s       *Server
	ch      ssh.Channel
	reqs    <-chan *ssh.Request
	user    User
	open    *atomic.Int64
	wg      *sync.WaitGroup // the connection's: it waits for the SFTP server
	ic      *idleConn
	started bool
	done    chan struct{} // closed when the SFTP server returns; nil before it starts and once finished
}

// serve answers the channel's requests until the channel closes.
func (ss *sessionChan) serve() {
	for {
		select {
		case req, ok := <-ss.reqs:
			if !ok {
				ss.closed()
				return
			}
			ss.answer(req)
		case <-ss.done:
			ss.finish()
		}
	}
}

// answer replies to one of the channel's requests: "subsystem sftp", the first time,
// starts the SFTP server; shell, exec, pty, env, agent and X11 forwarding are refused.
func (ss *sessionChan) answer(req *ssh.Request) {
	ok := !ss.started && req.Type == "subsystem" && isSFTP(req.Payload)
	if req.WantReply {
		_ = req.Reply(ok, nil)
	}
	if !ok {
		return
	}
	ss.started = true
	// Not closed by the SFTP server: finish sends the exit status first.
	h := newFileHandlers(ss.user, ss.s.cfg.AtomicUploads, ss.open)
	rs := newReadServer(&batchReader{Channel: ss.ch}, h, ss.user.Root() != nil)
	rs.corker = ss.ic
	pc := newParkingChannel(rs, h.requestHandlers(), ss.s.cfg.parkAfter, ss.wg)
	pc.ended, rs.settle = rs.closeFiles, pc.waitResponses
	ss.done = pc.done
	ss.wg.Add(1)
	go pc.serve()
}

// finish ends the channel once its SFTP server has returned (the client ended it): exit
// status 0, then close; the requests still arriving until the client's close are refused.
func (ss *sessionChan) finish() {
	ss.done = nil
	_, _ = ss.ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{0}))
	_ = ss.ch.Close()
}

// closed: the channel (or the connection) was closed; the SFTP server, if running,
// returns as its reads fail.
func (ss *sessionChan) closed() {
	if ss.done != nil {
		<-ss.done
	}
	_ = ss.ch.Close()
}

// isSFTP reports whether a subsystem request's payload names "sftp".
func isSFTP(payload []byte) bool {
	var p struct{ Name string }
	return ssh.Unmarshal(payload, &p) == nil && p.Name == "sftp"
}

// serverConfig is the SSH configuration of one connection: its callbacks log in through
// that connection's Conn.
func (s *Server) serverConfig(c Conn, nc net.Conn, st *authState) *ssh.ServerConfig {
	cfg := &ssh.ServerConfig{
		Config:                  ssh.Config{KeyExchanges: kexAlgorithms, Ciphers: ciphers, MACs: macs},
		PublicKeyAuthAlgorithms: userKeyAlgorims,
		MaxAuthTries:            maxAuthTries,
		ServerVersion:           "SSH-2.0-djftpd",
	}
	for _, k := range s.cfg.HostKeys {
		cfg.AddHostKey(k)
	}
	login := func(r djangoclient.AuthRequest) (*ssh.Permissions, error) {
		u, err := c.Login(s.baseCtx, r)
		if err != nil {
			var cl Closing
			if errors.As(err, &cl) && cl.Closing() {
				nc.Close()
			}
			return nil, err
		}
		st.set(u)
		return &ssh.Permissions{}, nil
	}
	if s.cfg.PasswordAuth {
		cfg.PasswordCallback = func(m ssh.ConnMetadata, pw []byte) (*ssh.Permissions, error) {
			return login(djangoclient.AuthRequest{Username: m.User(), Password: string(pw)})
		}
	}
	if s.cfg.PublicKeyAuth {
		cfg.PublicKeyCallback = func(m ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
			if !c.KeyBelongs(s.baseCtx, djangoclient.AuthRequest{Username: m.User(), PublicKey: line}) {
				return nil, errors.New("key not accepted")
			}
			return &ssh.Permissions{Extensions: map[string]string{publicKeyExtension: line}}, nil
		}
		// The login itself (events, session limits, home) happens once the client has
		// proved it holds the private key, never for a mere offer.
		cfg.VerifiedPublicKeyCallback = func(m ssh.ConnMetadata, key ssh.PublicKey, p *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			line := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
			if p == nil || p.Extensions[publicKeyExtension] != line {
				return nil, errors.New("key not accepted")
			}
			return login(djangoclient.AuthRequest{Username: m.User(), PublicKey: line})
		}
	}
	return cfg
}

// authState holds the User of the login that succeeded, for the connection to take.
type authState struct {
	mu   sync.Mutex
	user User
}

func (a *authState) set(u User) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.user != nil { // a second success cannot happen; never leak a session if it did
		a.user.Close()
	}
	a.user = u
}

func (a *authState) take() User {
	a.mu.Lock()
	defer a.mu.Unlock()
	u := a.user
	a.user = nil
	return u
}

// idleConn pushes its deadline forward on every read and write once idle is set, so a
// session that moves no byte for that long is closed.
type idleConn struct {
	net.Conn
	idle atomic.Int64 // nanoseconds; 0: no idle deadline
	cork corkState    // cork.go
}

// setIdle starts the idle deadline, also for the read already waiting.
func (c *idleConn) setIdle(d time.Duration) {
	c.idle.Store(int64(d))
	if d > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(d))
	}
}

func (c *idleConn) Read(p []byte) (int, error) {
	if d := time.Duration(c.idle.Load()); d > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(d))
	}
	return c.Conn.Read(p)
}

// errUntrustedPeer: with the PROXY protocol on, a peer outside ProxyTrusted.
var errUntrustedPeer = errors.New("PROXY protocol: peer is not a trusted balancer")

// readProxy returns the client's address from the PROXY header a trusted peer sends
// (the peer itself for a LOCAL or UNKNOWN header: the balancer's own health check);
// nothing is read from any other peer.
func (s *Server) readProxy(nc net.Conn, peer netip.AddrPort) (netip.AddrPort, error) {
	if !proxyproto.Trusted(s.cfg.ProxyTrusted, peer.Addr()) {
		return peer, errUntrustedPeer
	}
	client, err := proxyproto.ReadHeader(nc)
	if err != nil {
		return peer, err
	}
	if !client.IsValid() {
		return peer, nil
	}
	return netip.AddrPortFrom(client.Addr().Unmap(), client.Port()), nil
}

// addrPort is a connection's remote address, IPv4-mapped IPv6 unmapped.
func addrPort(a net.Addr) netip.AddrPort {
	if t, ok := a.(*net.TCPAddr); ok {
		ap := t.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}
