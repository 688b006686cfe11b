// Package cache keeps Django's auth answers in memory (DESIGN.md section 3) so that most
// logins cost no HTTP request and a short Django outage does not lock known users out.
//
// Entries are keyed by username and a MAC of the password under a random per-process key;
// the password itself is never stored. A positive answer is fresh for the grant's TTL (or
// Config.TTL) and may then be served stale, for up to Config.StaleTTL, only while Django is
// unavailable. A 401 is remembered for Config.NegativeTTL for that exact username and
// password. Concurrent lookups of one key share one upstream call.
package cache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	gocache "github.com/patrickmn/go-cache"
	"golang.org/x/sync/singleflight"

	"github.com/djftpd/djftpd/djangoclient"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTTL         = 60 * time.Second
	DefaultNegativeTTL = 5 * time.Second
)

const (
	// flightTimeout bounds one shared upstream call, which runs detached from its callers'
	// contexts. djangoclient.Client bounds itself by its own Timeout (5 s by default); this
	// is only a backstop for an Authenticator that would not.
	flightTimeout = 30 * time.Second
	// sweepInterval is how often expired entries are dropped from memory, inline in a lookup.
	sweepInterval = time.Minute
)

// Authenticator answers an auth request; djangoclient.Client is the production one and
// Cache is one too, so they stack.
type Authenticator interface {
	Authenticate(ctx context.Context, r djangoclient.AuthRequest) (djangoclient.Grant, error)
}

var (
	_ Authenticator = (*djangoclient.Client)(nil)
	_ Authenticator = (*Cache)(nil)
)

// Result says how a lookup was answered, for the metric
// djftpd_auth_cache_lookups_total{result}.
type Result string

// Lookup results.
const (
	// ResultHit: a fresh positive entry answered; Django was not asked.
	ResultHit Result = "hit"
	// ResultMiss: Django was asked (possibly by a concurrent lookup of the same key); the
	// answer, grant or error, is Django's.
	ResultMiss Result = "miss"
	// ResultStale: Django was unavailable and an expired positive entry, within StaleTTL,
	// answered.
	ResultStale Result = "stale"
	// ResultNegativeHit: a remembered 401 for this exact username and password answered.
	ResultNegativeHit Result = "negative_hit"
)

// Config configures a Cache. Build it as a literal.
type Config struct {
	// TTL is how long a positive answer without its own ttl stays fresh. Zero means
	// DefaultTTL; negative means such answers are not served fresh from the cache at all
	// (they may still be kept for StaleTTL).
	TTL time.Duration
	// NegativeTTL is how long a 401 is remembered. Zero means DefaultNegativeTTL; negative
	// turns negative caching off.
	NegativeTTL time.Duration
	// StaleTTL is how long after its freshness ends a positive entry may still answer while
	// Django is unavailable. Zero (or negative) turns stale-if-error off; the sidecar's
	// configuration supplies the documented 1 h default.
	StaleTTL time.Duration
	// PerIP makes the client address (AuthRequest.ClientIP, IPv4-mapped IPv6 unmapped) part
	// of every key, positive and negative, so that Django's IP-based decisions (django-axes
	// lockouts, allow-lists) are asked again for every new address.
	PerIP bool
	// Now is the clock deciding freshness, staleness and negative entries; nil means
	// time.Now. Memory reclamation always follows the real clock.
	Now func() time.Time
}

// Cache is a caching Authenticator in front of another one. It is safe for concurrent use and
// starts no goroutine beyond the one per in-flight upstream call (owned by its singleflight
// group, ended when that call returns, bounded by the upstream's timeout).
type Cache struct {
	next     Authenticator
	log      *slog.Logger
	now      func() time.Time
	ttl      time.Duration
	negTTL   time.Duration
	staleTTL time.Duration
	keys     keyer
	perIP    bool

	store  *gocache.Cache // key → entry; expiry only reclaims memory
	flight singleflight.Group

	// mu orders writes against purges: a purge bumps epoch, and an upstream answer that
	// started before a purge is not stored after it.
	mu        sync.Mutex
	epoch     uint64
	nextSweep atomic.Int64 // unix nanoseconds, real clock
}

// entry is immutable once stored. It holds no password.
type entry struct {
	username   string // as typed
	granted    string // the grant's username (Django's get_username()); "" for a negative entry
	negative   bool
	grant      djangoclient.Grant // zero for a negative entry
	freshUntil time.Time          // by Config.Now
}

// New returns a Cache in front of next. A nil log discards everything.
func New(cfg Config, next Authenticator, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		next:     next,
		log:      log,
		now:      cfg.Now,
		ttl:      cfg.TTL,
		negTTL:   cfg.NegativeTTL,
		staleTTL: max(cfg.StaleTTL, 0),
		keys:     newKeyer(),
		perIP:    cfg.PerIP,
		// No janitor goroutine: lookups sweep expired entries every sweepInterval.
		store: gocache.New(gocache.NoExpiration, 0),
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.ttl == 0 {
		c.ttl = DefaultTTL
	}
	if c.negTTL == 0 {
		c.negTTL = DefaultNegativeTTL
	}
	c.nextSweep.Store(time.Now().Add(sweepInterval).UnixNano())
	return c
}

// Authenticate is AuthenticateWithResult without the Result.
func (c *Cache) Authenticate(ctx context.Context, r djangoclient.AuthRequest) (djangoclient.Grant, error) {
	g, _, err := c.AuthenticateWithResult(ctx, r)
	return g, err
}

// AuthenticateWithResult answers r from the cache or from the next Authenticator, and says
// which. Errors are the upstream's (wrapping djangoclient's sentinels), a remembered 401
// (wrapping djangoclient.ErrInvalidCredentials), or, when ctx ends while waiting for the
// upstream, djangoclient.ErrUnavailable wrapped together with ctx.Err(). A caller giving up
// does not cancel the upstream call for other callers of the same key; its answer is still
// cached. The returned Grant is the caller's own copy.
func (c *Cache) AuthenticateWithResult(ctx context.Context, r djangoclient.AuthRequest) (djangoclient.Grant, Result, error) {
	c.maybeSweep()
	k := c.key(r)
	if e, ok := c.get(k); ok && c.now().Before(e.freshUntil) {
		if e.negative {
			c.logLookup(ctx, r, ResultNegativeHit)
			return djangoclient.Grant{}, ResultNegativeHit,
				fmt.Errorf("cached answer: %w", djangoclient.ErrInvalidCredentials)
		}
		c.logLookup(ctx, r, ResultHit)
		return cloneGrant(e.grant), ResultHit, nil
	}

	ch := c.flight.DoChan(k, func() (any, error) {
		return c.fetch(ctx, k, r)
	})
	select {
	case <-ctx.Done():
		return djangoclient.Grant{}, ResultMiss,
			fmt.Errorf("wait for auth answer: %w: %w", djangoclient.ErrUnavailable, ctx.Err())
	case res := <-ch:
		o, _ := res.Val.(outcome)
		if o.result == "" {
			o.result = ResultMiss
		}
		c.logLookup(ctx, r, o.result)
		if res.Err != nil {
			return djangoclient.Grant{}, o.result, res.Err
		}
		return cloneGrant(o.grant), o.result, nil
	}
}

// key is r's cache key: username, password (or public key) verifier and, with PerIP, the
// client address.
func (c *Cache) key(r djangoclient.AuthRequest) string {
	var ip string
	if c.perIP {
		ip = normalizeIP(r.ClientIP)
	}
	if r.PublicKey != "" {
		return c.keys.publicKeyKey(r.Username, ip, r.PublicKey)
	}
	return c.keys.key(r.Username, ip, r.Password)
}

type outcome struct {
	grant  djangoclient.Grant
	result Result
}

// fetch is the shared upstream call for key k. It runs detached from the first caller's
// cancellation (keeping its values), bounded by flightTimeout.
func (c *Cache) fetch(first context.Context, k string, r djangoclient.AuthRequest) (any, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(first), flightTimeout)
	defer cancel()

	c.mu.Lock()
	epoch := c.epoch
	c.mu.Unlock()

	g, err := c.next.Authenticate(ctx, r)
	now := c.now()
	switch {
	case err == nil:
		fresh, keep := c.lifetime(g)
		c.storeUnlessPurged(epoch, k, entry{username: r.Username, granted: g.Username, grant: g, freshUntil: now.Add(fresh)}, keep)
		return outcome{grant: g, result: ResultMiss}, nil

	case errors.Is(err, djangoclient.ErrInvalidCredentials):
		// Replaces (or, with negative caching off, deletes) any positive entry of this key.
		c.storeUnlessPurged(epoch, k, entry{username: r.Username, negative: true, freshUntil: now.Add(c.negTTL)}, c.negTTL)
		return outcome{result: ResultMiss}, err

	case errors.Is(err, djangoclient.ErrUnavailable):
		if e, ok := c.get(k); ok && !e.negative && c.staleTTL > 0 && now.Before(e.freshUntil.Add(c.staleTTL)) {
			c.log.LogAttrs(ctx, slog.LevelWarn, "django unavailable, serving a stale auth answer",
				slog.String("user", r.Username),
				slog.Duration("stale_for", now.Sub(e.freshUntil)),
				slog.Any("err", err))
			return outcome{grant: e.grant, result: ResultStale}, nil
		}
		return outcome{result: ResultMiss}, err

	default: // ErrRejected, ErrBadGrant, anything else: never stale, nothing stored
		return outcome{result: ResultMiss}, err
	}
}

// lifetime returns how long grant g is fresh and how long its entry is kept (fresh plus
// StaleTTL). Django's "ttl": 0 (NoCache) keeps nothing, so no stale copy either; keep ≤ 0
// makes storeUnlessPurged delete what an earlier answer left under the key.
func (c *Cache) lifetime(g djangoclient.Grant) (fresh, keep time.Duration) {
	if g.NoCache {
		return 0, 0
	}
	fresh = c.ttl
	if g.TTL > 0 {
		fresh = g.TTL
	}
	return fresh, max(fresh, 0) + c.staleTTL
}

// storeUnlessPurged stores e under k for keep (real time) unless a purge happened since epoch was read;
// keep ≤ 0 deletes k instead.
func (c *Cache) storeUnlessPurged(epoch uint64, k string, e entry, keep time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if epoch != c.epoch {
		c.store.Delete(k)
		return
	}
	if keep <= 0 {
		c.store.Delete(k)
		return
	}
	c.store.Set(k, e, keep)
}

func (c *Cache) get(k string) (entry, bool) {
	v, ok := c.store.Get(k)
	if !ok {
		return entry{}, false
	}
	e, ok := v.(entry)
	return e, ok
}

// Purge removes every entry, positive and negative, fresh or kept for stale use, of username,
// and keeps answers already in flight from being stored. Django calls it through /cache/purge
// when the user's password, activity, groups or FTP account change, naming the user by
// get_username(), which need not be what was typed at login (ALICE, an e-mail address, an
// LDAP form). So an entry goes when its typed or granted username is username, when its typed
// username is one that some entry shows was granted as username, or when it differs from
// username in case only: a purge too many costs one Django call, one too few keeps a revoked
// login working.
func (c *Cache) Purge(username string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	items := c.store.Items()
	typedAs := map[string]bool{username: true}
	for _, it := range items {
		if e, ok := it.Object.(entry); ok && e.granted == username {
			typedAs[e.username] = true
		}
	}
	for k, it := range items {
		if e, ok := it.Object.(entry); ok && (typedAs[e.username] || e.granted == username ||
			strings.EqualFold(e.username, username)) {
			c.store.Delete(k)
		}
	}
}

// PurgeAll removes every entry and keeps answers already in flight from being stored.
func (c *Cache) PurgeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.store.Flush()
}

// maybeSweep drops expired entries from memory at most once per sweepInterval, in the
// lookup that finds the interval passed; go-cache runs no janitor goroutine here.
func (c *Cache) maybeSweep() {
	now := time.Now().UnixNano()
	next := c.nextSweep.Load()
	if now < next || !c.nextSweep.CompareAndSwap(next, now+int64(sweepInterval)) {
		return
	}
	c.store.DeleteExpired()
}

func (c *Cache) logLookup(ctx context.Context, r djangoclient.AuthRequest, res Result) {
	if !c.log.Enabled(ctx, slog.LevelDebug) { // its attributes would escape to the heap
		return
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "auth cache lookup",
		slog.String("user", r.Username),
		slog.String("session", r.Session),
		slog.String("result", string(res)))
}

// cloneGrant copies the pointer fields, so a caller changing its Grant cannot change the
// cached one.
func cloneGrant(g djangoclient.Grant) djangoclient.Grant {
	if g.QuotaBytes != nil {
		q := *g.QuotaBytes
		g.QuotaBytes = &q
	}
	if g.MaxSessions != nil {
		m := *g.MaxSessions
		g.MaxSessions = &m
	}
	return g
}
