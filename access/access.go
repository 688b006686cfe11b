package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/storage"
)

// Errors of a login, beside the djangoclient sentinels the authenticator returns.
var (
	// ErrBanned: the address is banned after repeated failed logins. Login wraps it
	// with ErrInvalidCredentials on the failure that bans.
	ErrBanned = errors.New("address temporarily banned after failed logins")
	// ErrTooManySessions: the user already has Grant.MaxSessions sessions.
	ErrTooManySessions = errors.New("too many sessions for this user")
	// ErrHomeUnusable: the granted home could not be created or opened on this
	// machine's disk (not Django's fault, unlike djangoclient.ErrBadGrant).
	ErrHomeUnusable = errors.New("home directory cannot be created or opened")
)

// Authenticator answers a login: a Grant, or an error wrapping a djangoclient sentinel.
type Authenticator interface {
	Authenticate(ctx context.Context, r djangoclient.AuthRequest) (djangoclient.Grant, error)
}

// Config is the login policy shared by the protocols.
type Config struct {
	// HomeRoot is the absolute directory every home is inside; opened once in New.
	HomeRoot string
	// CreateHome creates a missing home (mode 0750) at login.
	CreateHome bool
	// Storage is where homes live (DJFTPD_STORAGE); nil means directories under
	// HomeRoot, opened by New.
	Storage storage.Storage
	// FailedLoginDelay is waited before a wrong-credentials answer returns.
	FailedLoginDelay time.Duration
	// MaxLoginAttempts is how many failed logins one connection may make.
	MaxLoginAttempts int
	// Log receives the policy's own warnings (a home too large to walk); nil discards.
	Log *slog.Logger
	// BanThreshold failed logins from one address within BanWindow ban it for
	// BanTime; 0 turns banning off.
	BanThreshold       int
	BanWindow, BanTime time.Duration
	// MaxConnections and MaxConnectionsPerIP bound open connections of every protocol
	// together, in total and per client address; 0 means no limit.
	MaxConnections, MaxConnectionsPerIP int
}

// Core applies Config for every session of every protocol. It is safe for concurrent use.
type Core struct {
	cfg      Config
	auth     Authenticator
	store    storage.Storage // HomeRoot opened once (homes are opened through it), or Config.Storage
	ownStore bool            // opened by New, closed by Close
	defend   *defender
	users    userSessions
	conns    connLimits
	usage    usageTracker
	log      *slog.Logger
}

// New opens the home root (creating it when homes are created) and returns a Core.
// Close releases the root.
func New(cfg Config, auth Authenticator) (*Core, error) {
	if auth == nil {
		return nil, errors.New("nil authenticator")
	}
	store, own := cfg.Storage, false
	if store == nil {
		root, err := openHomeRoot(cfg.HomeRoot, cfg.CreateHome)
		if err != nil {
			return nil, err
		}
		store, own = storage.NewLocalAt(cfg.HomeRoot, root), true
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Core{
		cfg: cfg, auth: auth, store: store, ownStore: own, log: log,
		defend: &defender{threshold: cfg.BanThreshold, window: cfg.BanWindow, banFor: cfg.BanTime, now: time.Now},
	}, nil
}

// Close releases the home root (a storage given in Config stays open). Users already
// logged in keep their homes open.
func (c *Core) Close() error {
	if c.ownStore {
		return c.store.Close()
	}
	return nil
}

// Storage is where the homes live; front ends ask its Capabilities before login (FEAT).
func (c *Core) Storage() storage.Storage { return c.store }

// Banned reports whether ip is banned now; front ends refuse it at connect.
func (c *Core) Banned(ip netip.Addr) bool { return c.defend.banned(ip) }

// LoginRequest is one login attempt, whatever the protocol.
type LoginRequest struct {
	Username, Password string
	// PublicKey, instead of Password: the authorized_keys line of an SSH key the client
	// has proved it holds (SFTP); Django answers whether it is the user's.
	PublicKey string
	ClientIP  netip.Addr
	Protocol  string // "ftp", "ftps" or "sftp": what Django is told
	Session   string // the session id events carry
}

// Login authenticates r and returns the logged-in User. Wrong credentials (an error
// wrapping djangoclient.ErrInvalidCredentials) count toward the address's ban, and
// Login waits the failed-login delay before returning them (less if ctx ends); the
// error wraps ErrBanned as well when this failure banned the address. Other errors
// (Django unavailable or refusing, ErrTooManySessions, ErrHomeUnusable) are not the
// user's fault and count toward nothing.
func (c *Core) Login(ctx context.Context, r LoginRequest) (*User, error) {
	g, err := c.auth.Authenticate(ctx, djangoclient.AuthRequest{
		Username: r.Username, Password: r.Password, PublicKey: r.PublicKey, ClientIP: r.ClientIP.String(),
		Protocol: r.Protocol, Session: r.Session,
	})
	if errors.Is(err, djangoclient.ErrInvalidCredentials) {
		if c.defend.failed(r.ClientIP) {
			err = errors.Join(err, ErrBanned)
		}
		sleep(ctx, c.cfg.FailedLoginDelay)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	if err := c.users.acquire(g.Username, g.MaxSessions); err != nil {
		return nil, err
	}
	home, err := c.openHome(ctx, g)
	if err != nil {
		c.users.release(g.Username)
		return nil, err
	}
	return &User{grant: g, fs: home, core: c, release: func() { c.users.release(g.Username) }}, nil
}

// openHome opens the granted home in the storage, creating it if allowed. A local
// home is created and opened through the home root, so a symlink planted under it
// cannot lead the home out; an S3 home is a key prefix no name can leave.
func (c *Core) openHome(ctx context.Context, g djangoclient.Grant) (storage.FS, error) {
	rel, err := filepath.Rel(c.cfg.HomeRoot, g.Home)
	if err != nil || !filepath.IsLocal(rel) {
		return nil, fmt.Errorf("home %q is not inside %q: %w", g.Home, c.cfg.HomeRoot, djangoclient.ErrBadGrant)
	}
	home, err := c.store.Home(ctx, g.Home, c.cfg.CreateHome)
	if err != nil {
		return nil, fmt.Errorf("open home: %w: %w", ErrHomeUnusable, err)
	}
	return home, nil
}

// openHomeRoot opens the home root, creating it first when homes are created.
func openHomeRoot(dir string, create bool) (*os.Root, error) {
	if create {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create home root (DJFTPD_HOME_ROOT): %w", err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open home root (DJFTPD_HOME_ROOT): %w", err)
	}
	return root, nil
}

// sleep waits d, or less if ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// Attempts counts one connection's failed logins against Config.MaxLoginAttempts.
type Attempts struct{ failed, max int }

// NewAttempts starts the count for a new connection.
func (c *Core) NewAttempts() *Attempts { return &Attempts{max: c.cfg.MaxLoginAttempts} }

// Fail records a failed login and reports whether the connection has used them all.
func (a *Attempts) Fail() (exhausted bool) {
	a.failed++
	return a.failed >= a.max
}

// Count is how many logins failed so far.
func (a *Attempts) Count() int { return a.failed }

// User is a logged-in user: the grant, its home, its session slot.
type User struct {
	grant   djangoclient.Grant
	fs      storage.FS
	core    *Core
	release func()
	once    sync.Once
}

// Grant is what Django granted (username, home, letters, quota, welcome).
func (u *User) Grant() *djangoclient.Grant { return &u.grant }

// Name is the granted username.
func (u *User) Name() string { return u.grant.Username }

// Can reports whether the grant has the permission letter.
func (u *User) Can(letter byte) bool { return u.grant.Can(letter) }

// FS is the home: every file operation goes through it.
func (u *User) FS() storage.FS { return u.fs }

// Root is the home as an os.Root when it is a local directory (uploads in place, the
// usage walk), else nil.
func (u *User) Root() *os.Root {
	if l, ok := u.fs.(*storage.LocalFS); ok {
		return l.Root
	}
	return nil
}

// Close ends the user's session: the home closes and the session slot is freed.
// It is safe to call more than once.
func (u *User) Close() {
	u.once.Do(func() {
		u.release()
		_ = u.fs.Close()
	})
}
