package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/djftpd/djftpd/access"
	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/ftpdriver"
	"github.com/djftpd/djftpd/sftpd"
	"github.com/djftpd/djftpd/storage"
)

// sftpGate is the SFTP front end's view of the session core: logins, bans and session
// limits through access (shared with FTP), events through the event queue, each carrying
// the protocol.
type sftpGate struct {
	core    *access.Core
	auth    access.Authenticator // key lookups, which count as nothing
	events  access.EventSink
	log     *slog.Logger
	metrics *ftpdriver.Metrics // djftpd_logins_total and djftpd_sessions, shared with FTP
}

var errSFTPBanned = errors.New("address temporarily banned after failed logins")

// Admit refuses a banned address and one over the connection limits (counted with
// FTP's); otherwise it starts the connection's session.
func (g *sftpGate) Admit(peer netip.AddrPort) (sftpd.Conn, error) {
	if g.core.Banned(peer.Addr()) {
		return nil, errSFTPBanned
	}
	release, err := g.core.Connect(peer.Addr())
	if err != nil {
		return nil, err
	}
	c := &sftpConn{g: g, id: newSFTPSessionID(), peer: peer, attempts: g.core.NewAttempts(), started: time.Now(),
		release: release}
	c.log = g.log.With("session", c.id, "client", peer.String())
	g.metrics.Connected()
	c.emit(djangoclient.Event{Type: djangoclient.EventConnect}, nil)
	return c, nil
}

// sftpConn is one SFTP connection: its session id and failed-login count.
type sftpConn struct {
	g        *sftpGate
	id       string
	peer     netip.AddrPort
	attempts *access.Attempts
	started  time.Time
	log      *slog.Logger
	release  func() // uncounts the connection from the shared limits

	mu       sync.Mutex
	username string // once logged in, for the live sessions list
}

// info is the connection as the live sessions list shows it.
func (c *sftpConn) info() ftpdriver.SessionInfo {
	si := ftpdriver.SessionInfo{ID: c.id, Protocol: "sftp", ClientIP: c.peer.Addr().String(), ConnectedAt: c.started.UTC()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.username != "" {
		u := c.username
		si.Username = &u
	}
	return si
}

// closingError ends the connection after a refusal (attempts used up, address banned,
// or a server fault: the client should not keep trying).
type closingError struct{ error }

func (closingError) Closing() bool   { return true }
func (e closingError) Unwrap() error { return e.error }

// emit sends a connection event (no user yet) through the core's Emit, marked "sftp".
func (c *sftpConn) emit(e djangoclient.Event, user *string) {
	e.Username = user
	e.Protocol = "sftp"
	access.Emit(c.g.events, e, c.id, c.peer.Addr(), nil)
}

func (c *sftpConn) request(r djangoclient.AuthRequest) access.LoginRequest {
	return access.LoginRequest{Username: r.Username, Password: r.Password, PublicKey: r.PublicKey,
		ClientIP: c.peer.Addr(), Protocol: "sftp", Session: c.id}
}

// KeyBelongs asks the cache (and Django behind it) whether the key is the user's; a
// "no" is an ordinary key offer, not a failed login.
func (c *sftpConn) KeyBelongs(ctx context.Context, r djangoclient.AuthRequest) bool {
	if access.ValidUsername(r.Username) != nil {
		return false
	}
	_, err := c.g.auth.Authenticate(ctx, djangoclient.AuthRequest{Username: r.Username, PublicKey: r.PublicKey,
		ClientIP: c.peer.Addr().String(), Protocol: "sftp", Session: c.id})
	return err == nil
}

// Login logs in through the core; refusals are logged and reported as events as FTP's are.
func (c *sftpConn) Login(ctx context.Context, r djangoclient.AuthRequest) (sftpd.User, error) {
	method := "password"
	if r.PublicKey != "" {
		method = "publickey"
	}
	if err := access.ValidUsername(r.Username); err != nil {
		err = fmt.Errorf("%w: %w", djangoclient.ErrInvalidCredentials, err)
		c.g.metrics.Login(err)
		return nil, c.failed(r.Username, method, err)
	}
	u, err := c.g.core.Login(ctx, c.request(r))
	c.g.metrics.Login(err)
	if err != nil {
		return nil, c.failed(r.Username, method, err)
	}
	name := u.Name()
	c.log = c.log.With("user", name)
	if err := u.RefreshUsage(); err != nil {
		c.log.Warn("usage not refreshed at login", "err", err)
	}
	c.log.Info("login", "method", method, "home", u.Grant().Home, "perms", u.Grant().Perms)
	c.mu.Lock()
	c.username = name
	c.mu.Unlock()
	su := &sftpUser{c: c, u: u, name: name, started: time.Now()}
	su.Emit(djangoclient.Event{Type: djangoclient.EventLogin})
	return su, nil
}

// failed logs and reports a refused login and says whether the connection must end.
func (c *sftpConn) failed(username, method string, err error) error {
	logged := access.LoggedUsername(username)
	c.emit(djangoclient.Event{Type: djangoclient.EventLoginFailed}, &logged)
	if !errors.Is(err, djangoclient.ErrInvalidCredentials) {
		c.log.Warn("login failed: server fault", "user", logged, "method", method, "err", err)
		return closingError{err}
	}
	c.log.Info("login failed", "user", logged, "method", method)
	if errors.Is(err, access.ErrBanned) {
		c.log.Warn("address banned after repeated failed logins")
		return closingError{err}
	}
	if c.attempts.Fail() {
		c.log.Warn("too many failed logins, closing", "attempts", c.attempts.Count())
		return closingError{err}
	}
	return err
}

func (c *sftpConn) Close() {
	c.release()
	c.g.metrics.Disconnected()
	ms := time.Since(c.started).Milliseconds()
	c.emit(djangoclient.Event{Type: djangoclient.EventDisconnect, DurationMS: &ms}, nil)
}

// sftpUser is a logged-in SFTP session over an access.User.
type sftpUser struct {
	c       *sftpConn
	u       *access.User
	name    string
	started time.Time
}

func (u *sftpUser) Name() string    { return u.name }
func (u *sftpUser) Can(p byte) bool { return u.u.Can(p) }
func (u *sftpUser) Root() *os.Root  { return u.u.Root() }
func (u *sftpUser) FS() storage.FS  { return u.u.FS() }
func (u *sftpUser) Emit(e djangoclient.Event) {
	e.Protocol = "sftp"
	access.Emit(u.c.g.events, e, u.c.id, u.c.peer.Addr(), u.u)
}

func (u *sftpUser) Close() {
	ms := time.Since(u.started).Milliseconds()
	u.Emit(djangoclient.Event{Type: djangoclient.EventLogout, DurationMS: &ms})
	u.u.Close()
}

// GuardQuota is the core's quota guard, shared with the user's FTP sessions (nil without
// a quota).
func (u *sftpUser) GuardQuota(credit int64) (sftpd.QuotaGuard, error) {
	g, err := u.u.GuardQuota(credit)
	if err != nil || g == nil {
		return nil, err // never a typed nil inside the interface
	}
	return g, nil
}

// AddUsage records a removed file's bytes in the core's usage record.
func (u *sftpUser) AddUsage(delta int64) { u.u.AddUsage(delta) }

func newSFTPSessionID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// sftpd finds the quota by a type assertion: a mismatch would silently drop it.
var _ sftpd.QuotaUser = (*sftpUser)(nil)
