// Package ftpdriver is djftpd's FTP front end. It runs on goftp.io/server/v2 for the
// accept loop, line reading and command dispatch, and replaces, through the library's
// extension points (command table, wrapped listener), everything that needs to be safe:
// login state, permissions, the os.Root sandbox and the data channel (DESIGN.md §4, §8).
package ftpdriver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goftp "goftp.io/server/v2"

	"github.com/djftpd/djftpd/access"
	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/internal/loglimit"
	"github.com/djftpd/djftpd/storage"
)

// Authenticator answers a login (access.Authenticator): a Grant, or an error wrapping
// one of the djangoclient sentinels; errors.go maps each to an FTP reply.
type Authenticator = access.Authenticator

// EventSink receives the events of every session (access.EventSink). Emit runs inside FTP
// commands, before their final reply: it must never wait for Django, and it returns only
// once an event of completed work is durable (djangoclient.DurableType: on disk, one
// group-committed fsync), so a reply never acknowledges what a crash can lose.
type EventSink = access.EventSink

type discardEvents struct{}

func (discardEvents) Emit(djangoclient.Event) {}

// greeting is the text of the 220 reply at connect.
const greeting = "djftpd ready"

// Config is everything the FTP front end needs; main.go builds it from the environment.
type Config struct {
	// PassivePortMin and PassivePortMax bound the range passive listeners bind in,
	// inclusive.
	PassivePortMin, PassivePortMax int
	// PublicHost is the address announced in PASV replies (IPv6: PASV refused, EPSV
	// needs no address); empty means the control
	// connection's local address.
	PublicHost netip.Addr
	// HomeRoot is the absolute directory every home is inside (DJFTPD_HOME_ROOT). It is
	// opened once, in New, and every home is opened through it.
	HomeRoot string
	// Storage is where homes live (DJFTPD_STORAGE), for the login policy New builds
	// when Access is nil; nil means directories under HomeRoot.
	Storage storage.Storage
	// CreateHome creates a missing home directory (mode 0750) at login.
	CreateHome bool
	// MaxLineLength bounds one control line, CRLF included; a longer line gets 500 and
	// the connection is closed.
	MaxLineLength int
	// LoginTimeout closes a connection that has not logged in this long after connecting.
	LoginTimeout time.Duration
	// IdleTimeout closes a logged-in control connection that sends no command this long.
	// It never fires during a transfer: the control connection is not read then.
	IdleTimeout time.Duration
	// DataTimeout bounds the wait for a data connection to open.
	DataTimeout time.Duration
	// FailedLoginDelay is waited before answering 530, to slow password guessing.
	FailedLoginDelay time.Duration
	// MaxLoginAttempts closes the connection (421) after that many failed logins.
	MaxLoginAttempts int
	// AtomicUploads makes STOR write a hidden temporary file renamed on success.
	AtomicUploads bool
	// ASCIIConversion converts line ends in TYPE A (RFC 959): CRLF on the wire, LF on
	// disk. Off, TYPE A is accepted and files move unchanged (vsftpd's way).
	ASCIIConversion bool
	// TLSMode says how FTPS is offered; TLS must be set unless it is TLSOff.
	TLSMode TLSMode
	// TLS is the server TLS configuration for control and data connections.
	TLS *tls.Config
	// MaxConnections and MaxConnectionsPerIP bound open control connections, in total
	// and per client address; 0 means no limit.
	MaxConnections, MaxConnectionsPerIP int
	// MaxPassivePerIP bounds the passive listeners (PASV/EPSV not yet used) open for
	// one client address across its sessions, so one address cannot hoard the passive
	// port range; 0 means no limit.
	MaxPassivePerIP int
	// BanThreshold failed logins from one address within BanWindow ban it for BanTime;
	// 0 turns banning off.
	BanThreshold       int
	BanWindow, BanTime time.Duration
	// ProxyProtocol expects a PROXY protocol v1 or v2 header on every control
	// connection; its source address is the client's for every rule.
	ProxyProtocol bool
	// ProxyTrusted are the only peers a PROXY header is read from; required when
	// ProxyProtocol is on. Connections from other peers are closed unread.
	ProxyTrusted []netip.Prefix
	// TLSHandshakeTimeout bounds a control connection's TLS handshake (implicit FTPS
	// and AUTH TLS) and the 421 written to a connection refused at connect; 0 means 10s.
	TLSHandshakeTimeout time.Duration
	// XferLog, if set, gets one xferlog line per file transfer.
	XferLog *XferLog
	// Metrics receives the front end's measurements; nil keeps them unregistered.
	Metrics *Metrics
	// Access is the login policy shared with other protocol front ends (SFTP); nil
	// means New builds one from this Config's HomeRoot, CreateHome, FailedLoginDelay,
	// MaxLoginAttempts, MaxConnections* and Ban* fields, which are otherwise only validated (main
	// builds both from the same variables).
	Access *access.Core
}

// ConfigError is an invalid Config field. Field is its Go name, so that the caller
// can name where the value came from (main names the environment variable).
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks the fields a caller sets; New calls it. Zero durations and limits
// keep their documented meaning (a default, or no limit).
func (c Config) Validate() error {
	checks := []struct {
		bad           bool
		field, reason string
	}{
		{c.PassivePortMin < 1 || c.PassivePortMax > 65535 || c.PassivePortMin > c.PassivePortMax,
			"PassivePortMin", fmt.Sprintf("invalid passive port range %d-%d", c.PassivePortMin, c.PassivePortMax)},
		{!filepath.IsAbs(c.HomeRoot), "HomeRoot", fmt.Sprintf("must be an absolute directory, got %q", c.HomeRoot)},
		{c.MaxLineLength < 64, "MaxLineLength", "must be at least 64"},
		{c.LoginTimeout <= 0, "LoginTimeout", "must be a positive duration such as 30s"},
		{c.IdleTimeout <= 0, "IdleTimeout", "must be a positive duration such as 30s"},
		{c.DataTimeout <= 0, "DataTimeout", "must be a positive duration such as 30s"},
		{c.FailedLoginDelay < 0, "FailedLoginDelay", "must not be negative"},
		{c.MaxLoginAttempts < 1, "MaxLoginAttempts", "must be at least 1"},
		{c.MaxConnections < 0, "MaxConnections", "must not be negative"},
		{c.MaxConnectionsPerIP < 0, "MaxConnectionsPerIP", "must not be negative"},
		{c.MaxPassivePerIP < 0, "MaxPassivePerIP", "must not be negative"},
		{c.BanThreshold < 0, "BanThreshold", "must not be negative"},
		{c.BanThreshold > 0 && c.BanWindow <= 0, "BanWindow", "must be a positive duration when banning is on"},
		{c.BanThreshold > 0 && c.BanTime <= 0, "BanTime", "must be a positive duration when banning is on"},
		{c.ProxyProtocol && len(c.ProxyTrusted) == 0, "ProxyTrusted",
			"required when the PROXY protocol is on: the trusted balancers' addresses (CIDRs), the only peers whose PROXY header is believed"},
		{c.TLSHandshakeTimeout < 0, "TLSHandshakeTimeout", "must not be negative"},
		{!slices.Contains([]TLSMode{"", TLSOff, TLSExplicit, TLSRequired, TLSImplicit}, c.TLSMode),
			"TLSMode", fmt.Sprintf("unknown TLS mode %q", c.TLSMode)},
	}
	for _, ch := range checks {
		if ch.bad {
			return &ConfigError{Field: ch.field, Reason: ch.reason}
		}
	}
	return nil
}

// withDefaults checks c and fills in what zero values stand for.
func (c *Config) withDefaults() error {
	if err := c.Validate(); err != nil {
		return err
	}
	if c.TLSHandshakeTimeout == 0 {
		c.TLSHandshakeTimeout = defaultTLSHandshakeTimeout
	}
	if c.TLSMode == "" {
		c.TLSMode = TLSOff
	}
	if c.TLSMode != TLSOff && c.TLS == nil {
		return fmt.Errorf("TLS mode %s needs a certificate (Config.TLS)", c.TLSMode)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	return nil
}

// Server is one FTP front end. Create it with New, run it with Serve, stop it with
// Shutdown.
type Server struct {
	cfg    Config
	events EventSink
	log    *slog.Logger
	// debugLog is log's level reaching DEBUG (fixed at start). The per-command lines
	// check it before calling slog: a disabled Debug call still enters Logger.log,
	// whose large frame grew every session goroutine's stack (copystack) at its first
	// reply, ~3.5 % of a login's CPU.
	debugLog bool
	cmds     map[string]*command
	pasv     passiveLimits
	// access is the login policy, shared with other front ends when Config.Access is set.
	access     *access.Core
	ownsAccess bool // built by New, so closed by Shutdown

	proxyWarn *loglimit.Limiter // bounds the log lines of the PROXY trust rule

	listenersMu sync.Mutex
	listeners   []net.Listener // one per Serve call, closed by Shutdown

	// stateMu orders "shutting down" against the deadline each control read sets, so a
	// session cannot miss the shutdown and block in a read until its idle timeout.
	stateMu      sync.RWMutex
	shuttingDown bool
	sessions     map[*session]struct{}
	sessionsDone chan struct{} // closed when shutting down and the last session ended
	doneOnce     sync.Once
	closing      atomic.Bool
	baseCtx      context.Context // cancelled at the end of Shutdown: ends pending logins
	cancelBase   context.CancelFunc
}

// New checks cfg and builds a server. auth answers every login; events (may be nil)
// receives what happens; log may be nil.
func New(cfg Config, auth Authenticator, events EventSink, log *slog.Logger) (*Server, error) {
	if err := cfg.withDefaults(); err != nil {
		return nil, err
	}
	if auth == nil {
		return nil, errors.New("nil authenticator")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if events == nil {
		events = discardEvents{}
	}
	core, owns := cfg.Access, false
	if core == nil {
		var err error
		acfg := cfg.accessConfig()
		acfg.Log = log
		if core, err = access.New(acfg, auth); err != nil {
			return nil, err
		}
		owns = true
	}
	s := &Server{
		access:       core,
		proxyWarn:    &loglimit.Limiter{Interval: time.Second},
		ownsAccess:   owns,
		cfg:          cfg,
		events:       events,
		log:          log,
		debugLog:     log.Enabled(context.Background(), slog.LevelDebug),
		sessions:     make(map[*session]struct{}),
		sessionsDone: make(chan struct{}),
	}
	s.cmds = commandTable()
	s.baseCtx, s.cancelBase = context.WithCancel(context.Background())
	return s, nil
}

// accessConfig is the part of c the login policy uses.
func (c Config) accessConfig() access.Config {
	return access.Config{
		HomeRoot: c.HomeRoot, CreateHome: c.CreateHome, Storage: c.Storage,
		FailedLoginDelay: c.FailedLoginDelay, MaxLoginAttempts: c.MaxLoginAttempts,
		BanThreshold: c.BanThreshold, BanWindow: c.BanWindow, BanTime: c.BanTime,
		MaxConnections: c.MaxConnections, MaxConnectionsPerIP: c.MaxConnectionsPerIP,
	}
}

// Serve accepts FTP connections on ln until ctx is cancelled or Shutdown is called.
// It returns nil after a shutdown and the accept error otherwise.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return s.serve(ctx, newListener(ln, s, false))
}

// ServeImplicit is Serve for implicit FTPS: TLS from the first byte (DESIGN.md §4),
// data connections protected unless the client sends PROT C.
func (s *Server) ServeImplicit(ctx context.Context, ln net.Listener) error {
	if s.cfg.TLSMode != TLSImplicit {
		return errors.New("implicit FTPS needs TLS mode implicit")
	}
	return s.serve(ctx, newListener(ln, s, true))
}

// serve runs one goftp server on ln. goftp defect: a goftp.Server serves one listener
// and cannot be reused after Serve returns (its Shutdown races Serve), so every Serve
// call (plain and implicit FTPS) gets its own, stopped by closing its listener.
func (s *Server) serve(ctx context.Context, ln *listener) error {
	lib, err := goftp.NewServer(&goftp.Options{
		Commands:       s.libCommands(),
		Perm:           goftp.NewSimplePerm("ftp", "ftp"),
		WelcomeMessage: greeting,
		Logger:         libLogger{log: s.log, quiet: !s.debugLog},
	})
	if err != nil {
		return fmt.Errorf("create goftp server: %w", err)
	}
	s.listenersMu.Lock()
	if s.closing.Load() {
		s.listenersMu.Unlock()
		return nil
	}
	s.listeners = append(s.listeners, ln)
	s.listenersMu.Unlock()
	// goftp's Shutdown races with its own Serve (it reads fields Serve writes unlocked),
	// so djftpd stops a goftp server by closing the listener under it.
	stop := context.AfterFunc(ctx, func() { _ = ln.Close() })
	defer stop()
	defer ln.Close() // releases connections still being admitted
	err = lib.Serve(ln)
	if s.closing.Load() || ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("serve ftp: %w", err)
}

// Shutdown stops accepting, tells idle sessions 421 and closes them, lets running
// commands and transfers finish until ctx is done, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.listenersMu.Lock()
	s.closing.Store(true)
	var err error
	for _, ln := range s.listeners {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = cerr
		}
	}
	s.listenersMu.Unlock()
	s.stateMu.Lock()
	s.shuttingDown = true
	now := time.Now()
	for sess := range s.sessions {
		// Wakes a session blocked in a control read; the read then answers 421.
		_ = sess.conn.raw.SetReadDeadline(now)
	}
	if len(s.sessions) == 0 {
		s.doneOnce.Do(func() { close(s.sessionsDone) })
	}
	s.stateMu.Unlock()

	defer s.cancelBase()
	if s.ownsAccess {
		defer s.access.Close()
	}
	select {
	case <-s.sessionsDone:
	case <-ctx.Done():
		s.cancelBase()
		s.stateMu.Lock()
		for sess := range s.sessions {
			sess.abort()
		}
		s.stateMu.Unlock()
		<-s.sessionsDone
	}
	if err != nil {
		return fmt.Errorf("close ftp listener: %w", err)
	}
	return nil
}

// admit applies the connect gates in order and registers the session.
func (s *Server) admit(sess *session) error {
	if s.access.Banned(sess.peer) {
		return errBanned
	}
	release, err := s.access.Connect(sess.peer)
	if err != nil {
		return err
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	if s.shuttingDown {
		release()
		return errShuttingDown
	}
	sess.releaseConn = release
	sess.admitted = true
	sess.live.secure = sess.conn.tls != nil // implicit FTPS
	s.sessions[sess] = struct{}{}
	s.cfg.Metrics.sessions.Inc()
	return nil
}

func (s *Server) removeSession(sess *session) {
	if !sess.admitted {
		return
	}
	sess.releaseConn()
	s.cfg.Metrics.sessions.Dec()
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	delete(s.sessions, sess)
	if s.shuttingDown && len(s.sessions) == 0 {
		s.doneOnce.Do(func() { close(s.sessionsDone) })
	}
}
