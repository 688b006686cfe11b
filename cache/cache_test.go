package cache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
)

// fakeUpstream counts calls and answers from a function; with gate set, each call waits for
// the gate to close (or its ctx to end) first.
type fakeUpstream struct {
	calls   atomic.Int32
	answer  func(r djangoclient.AuthRequest) (djangoclient.Grant, error)
	gate    chan struct{}
	started chan struct{} // receives once per call, if set
	ctxErr  atomic.Value  // ctx.Err() seen when the last call returned, as a string
}

func (f *fakeUpstream) Authenticate(ctx context.Context, r djangoclient.AuthRequest) (djangoclient.Grant, error) {
	f.calls.Add(1)
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			f.ctxErr.Store(fmt.Sprint(ctx.Err()))
			return djangoclient.Grant{}, fmt.Errorf("fake: %w: %w", djangoclient.ErrUnavailable, ctx.Err())
		}
	}
	f.ctxErr.Store(fmt.Sprint(ctx.Err()))
	return f.answer(r)
}

// passwords answers like Django with one valid password per user.
func passwords(valid map[string]string, ttl time.Duration) func(djangoclient.AuthRequest) (djangoclient.Grant, error) {
	return func(r djangoclient.AuthRequest) (djangoclient.Grant, error) {
		if pw, ok := valid[r.Username]; ok && pw == r.Password {
			q := int64(100)
			return djangoclient.Grant{Username: r.Username, Home: "/srv/ftp/" + r.Username, Perms: "elr", TTL: ttl, QuotaBytes: &q}, nil
		}
		return djangoclient.Grant{}, fmt.Errorf("fake: %w", djangoclient.ErrInvalidCredentials)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func req(user, pw string) djangoclient.AuthRequest {
	return djangoclient.AuthRequest{Username: user, Password: pw, ClientIP: "192.0.2.1", Protocol: "ftp", Session: "s"}
}

func newTestCache(cfg Config, up *fakeUpstream) (*Cache, *clock) {
	clk := newClock()
	cfg.Now = clk.Now
	return New(cfg, up, nil), clk
}

// lookup runs one AuthenticateWithResult and checks its result, error sentinel and the
// upstream call count afterwards.
func lookup(t *testing.T, c *Cache, up *fakeUpstream, r djangoclient.AuthRequest, wantRes Result, wantErr error, wantCalls int32) djangoclient.Grant {
	t.Helper()
	return lookupAs(t, c, up, r, r.Username, wantRes, wantErr, wantCalls)
}

// lookupAs is lookup for a grant whose username (wantUser) differs from the typed one.
func lookupAs(t *testing.T, c *Cache, up *fakeUpstream, r djangoclient.AuthRequest, wantUser string, wantRes Result, wantErr error, wantCalls int32) djangoclient.Grant {
	t.Helper()
	g, res, err := c.AuthenticateWithResult(context.Background(), r)
	if res != wantRes {
		t.Errorf("result = %q, want %q", res, wantRes)
	}
	if (wantErr == nil) != (err == nil) || !errors.Is(err, wantErr) {
		t.Errorf("err = %v, want %v", err, wantErr)
	}
	if err == nil && g.Username != wantUser {
		t.Errorf("grant = %+v", g)
	}
	if n := up.calls.Load(); n != wantCalls {
		t.Errorf("%d upstream calls, want %d", n, wantCalls)
	}
	return g
}

func TestHitWithinTTL(t *testing.T) {
	up := &fakeUpstream{answer: passwords(map[string]string{"alice": "pw"}, 0)}
	c, clk := newTestCache(Config{}, up)
	lookup(t, c, up, req("alice", "pw"), ResultMiss, nil, 1)
	clk.Advance(DefaultTTL - time.Second)
	lookup(t, c, up, req("alice", "pw"), ResultHit, nil, 1)
	if _, err := c.Authenticate(context.Background(), req("alice", "pw")); err != nil || up.calls.Load() != 1 {
		t.Fatalf("Authenticate = %v after %d calls", err, up.calls.Load())
	}
	clk.Advance(time.Second) // freshness ends at exactly TTL
	lookup(t, c, up, req("alice", "pw"), ResultMiss, nil, 2)
}

func TestGrantTTLOverridesDefault(t *testing.T) {
	for _, tt := range []struct {
		name             string
		grantTTL, cfgTTL time.Duration
		after            time.Duration
		want             Result
	}{
		{"short grant ttl expires first", 10 * time.Second, time.Minute, 11 * time.Second, ResultMiss},
		{"long grant ttl outlives default", 5 * time.Minute, time.Minute, 4 * time.Minute, ResultHit},
		{"zero grant ttl uses config", 0, 2 * time.Minute, 90 * time.Second, ResultHit},
		{"negative config ttl: no fresh hits", 0, -1, time.Nanosecond, ResultMiss},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := &fakeUpstream{answer: passwords(map[string]string{"alice": "pw"}, tt.grantTTL)}
			c, clk := newTestCache(Config{TTL: tt.cfgTTL}, up)
			lookup(t, c, up, req("alice", "pw"), ResultMiss, nil, 1)
			clk.Advance(tt.after)
			want := int32(1)
			if tt.want == ResultMiss {
				want = 2
			}
			lookup(t, c, up, req("alice", "pw"), tt.want, nil, want)
		})
	}
}

// TestNegativeOnlySamePassword pins DESIGN.md section 3: a remembered 401 never blocks a
// corrected password.
func TestNegativeOnlySamePassword(t *testing.T) {
	up := &fakeUpstream{answer: passwords(map[string]string{"alice": "right"}, 0)}
	c, clk := newTestCache(Config{}, up)
	lookup(t, c, up, req("alice", "wrong"), ResultMiss, djangoclient.ErrInvalidCredentials, 1)
	lookup(t, c, up, req("alice", "wrong"), ResultNegativeHit, djangoclient.ErrInvalidCredentials, 1)
	lookup(t, c, up, req("alice", "right"), ResultMiss, nil, 2)
	lookup(t, c, up, req("alice", "wrong2"), ResultMiss, djangoclient.ErrInvalidCredentials, 3)
	clk.Advance(DefaultNegativeTTL)
	lookup(t, c, up, req("alice", "wrong"), ResultMiss, djangoclient.ErrInvalidCredentials, 4)
}

func TestNegativeCachingOff(t *testing.T) {
	up := &fakeUpstream{answer: passwords(nil, 0)}
	c, _ := newTestCache(Config{NegativeTTL: -1}, up)
	lookup(t, c, up, req("alice", "wrong"), ResultMiss, djangoclient.ErrInvalidCredentials, 1)
	lookup(t, c, up, req("alice", "wrong"), ResultMiss, djangoclient.ErrInvalidCredentials, 2)
}

// TestStaleIfError pins DESIGN.md section 3: an expired positive entry answers only while
// Django is unavailable, only within StaleTTL.
func TestStaleIfError(t *testing.T) {
	tests := []struct {
		name     string
		staleTTL time.Duration
		after    time.Duration // past the end of freshness
		err      error
		want     Result
	}{
		{"unavailable within stale ttl", time.Hour, 59 * time.Minute, djangoclient.ErrUnavailable, ResultStale},
		{"unavailable at end of stale ttl", time.Hour, time.Hour, djangoclient.ErrUnavailable, ResultMiss},
		{"unavailable after stale ttl", time.Hour, 2 * time.Hour, djangoclient.ErrUnavailable, ResultMiss},
		{"stale off", 0, time.Second, djangoclient.ErrUnavailable, ResultMiss},
		{"401 is never stale", time.Hour, time.Second, djangoclient.ErrInvalidCredentials, ResultMiss},
		{"403 is never stale", time.Hour, time.Second, djangoclient.ErrRejected, ResultMiss},
		{"bad grant is never stale", time.Hour, time.Second, djangoclient.ErrBadGrant, ResultMiss},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fail atomic.Bool
			ok := passwords(map[string]string{"alice": "pw"}, 0)
			up := &fakeUpstream{answer: func(r djangoclient.AuthRequest) (djangoclient.Grant, error) {
				if fail.Load() {
					return djangoclient.Grant{}, fmt.Errorf("fake: %w", tt.err)
				}
				return ok(r)
			}}
			c, clk := newTestCache(Config{StaleTTL: tt.staleTTL}, up)
			lookup(t, c, up, req("alice", "pw"), ResultMiss, nil, 1)
			fail.Store(true)
			clk.Advance(DefaultTTL + tt.after)
			var wantErr error
			if tt.want != ResultStale {
				wantErr = tt.err
			}
			lookup(t, c, up, req("alice", "pw"), tt.want, wantErr, 2)
		})
	}
}

// Test401RemovesPositive: once Django says 401 for a key, its old positive entry is gone, so
// an outage right after cannot bring it back as a stale answer.
func Test401RemovesPositive(t *testing.T) {
	var answerErr error // set between lookups; each upstream call starts after the write
	ok := passwords(map[string]string{"alice": "pw"}, 0)
	up := &fakeUpstream{answer: func(r djangoclient.AuthRequest) (djangoclient.Grant, error) {
		if answerErr != nil {
			return djangoclient.Grant{}, answerErr
		}
		return ok(r)
	}}
	c, clk := newTestCache(Config{StaleTTL: time.Hour}, up)
	lookup(t, c, up, req("alice", "pw"), ResultMiss, nil, 1)
	clk.Advance(DefaultTTL)
	answerErr = fmt.Errorf("fake: %w", djangoclient.ErrInvalidCredentials)
	lookup(t, c, up, req("alice", "pw"), ResultMiss, djangoclient.ErrInvalidCredentials, 2)
	lookup(t, c, up, req("alice", "pw"), ResultNegativeHit, djangoclient.ErrInvalidCredentials, 2)
	clk.Advance(DefaultNegativeTTL)
	answerErr = fmt.Errorf("fake: %w", djangoclient.ErrUnavailable)
	lookup(t, c, up, req("alice", "pw"), ResultMiss, djangoclient.ErrUnavailable, 3)
}

func TestPurge(t *testing.T) {
	up := &fakeUpstream{answer: passwords(map[string]string{"alice": "pw", "bob": "pw", "ali": "pw"}, 0)}
	c, _ := newTestCache(Config{}, up)
	lookup(t, c, up, req("alice", "pw"), ResultMiss, nil, 1)
	lookup(t, c, up, req("alice", "old"), ResultMiss, djangoclient.ErrInvalidCredentials, 2)
	lookup(t, c, up, req("bob", "pw"), ResultMiss, nil, 3)
	lookup(t, c, up, req("ali", "pw"), ResultMiss, nil, 4)

	c.Purge("alice")
	lookup(t, c, up, req("bob", "pw"), ResultHit, nil, 4)
	lookup(t, c, up, req("ali", "pw"), ResultHit, nil, 4) // exact username, not a prefix
	lookup(t, c, up, req("alice", "pw"), ResultMiss, nil, 5)
	lookup(t, c, up, req("alice", "old"), ResultMiss, djangoclient.ErrInvalidCredentials, 6)

	c.PurgeAll()
	lookup(t, c, up, req("bob", "pw"), ResultMiss, nil, 7)
	lookup(t, c, up, req("ali", "pw"), ResultMiss, nil, 8)
	lookup(t, c, up, req("alice", "old"), ResultMiss, djangoclient.ErrInvalidCredentials, 9)
}

// TestPurgeDuringFlight: an answer that was on its way when a purge came is not stored, since
// it may predate the change that caused the purge.
func TestPurgeDuringFlight(t *testing.T) {
	for _, purge := range []func(*Cache){
		func(c *Cache) { c.Purge("alice") },
		func(c *Cache) { c.PurgeAll() },
	} {
		up := &fakeUpstream{
			answer:  passwords(map[string]string{"alice": "pw"}, 0),
			gate:    make(chan struct{}),
			started: make(chan struct{}, 1),
		}
		c, _ := newTestCache(Config{}, up)
		done := make(chan error)
		go func() {
			_, err := c.Authenticate(context.Background(), req("alice", "pw"))
			done <- err
		}()
		<-up.started
		purge(c)
		close(up.gate)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		up.gate, up.started = nil, nil
		lookup(t, c, up, req("alice", "pw"), ResultMiss, nil, 2)
	}
}

// TestSingleflight: concurrent lookups of one key make one upstream call.
func TestSingleflight(t *testing.T) {
	up := &fakeUpstream{
		answer:  passwords(map[string]string{"alice": "pw"}, 0),
		gate:    make(chan struct{}),
		started: make(chan struct{}, 100),
	}
	c, _ := newTestCache(Config{}, up)
	const n = 50
	var wg sync.WaitGroup
	results := make(chan Result, n)
	for range n {
		wg.Go(func() {
			_, res, err := c.AuthenticateWithResult(context.Background(), req("alice", "pw"))
			if err != nil {
				t.Error(err)
			}
			results <- res
		})
	}
	<-up.started
	time.Sleep(50 * time.Millisecond) // let the others join; a late one is a hit, never a call
	close(up.gate)
	wg.Wait()
	close(results)
	if got := up.calls.Load(); got != 1 {
		t.Fatalf("%d upstream calls for %d concurrent lookups, want 1", got, n)
	}
	for res := range results {
		if res != ResultMiss && res != ResultHit {
			t.Fatalf("result %q", res)
		}
	}
}

// TestWaiterCancelDoesNotCancelOthers: the first caller giving up returns at once, but the
// shared upstream call goes on for the others and its answer is cached.
func TestWaiterCancelDoesNotCancelOthers(t *testing.T) {
	up := &fakeUpstream{
		answer:  passwords(map[string]string{"alice": "pw"}, 0),
		gate:    make(chan struct{}),
		started: make(chan struct{}, 1),
	}
	c, _ := newTestCache(Config{}, up)

	ctxA, cancelA := context.WithCancel(context.Background())
	errA := make(chan error)
	go func() {
		_, err := c.Authenticate(ctxA, req("alice", "pw"))
		errA <- err
	}()
	<-up.started // A owns the flight
	resB := make(chan error)
	go func() {
		_, err := c.Authenticate(context.Background(), req("alice", "pw"))
		resB <- err
	}()
	cancelA()
	err := <-errA
	if !errors.Is(err, djangoclient.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: err = %v", err)
	}
	close(up.gate)
	if err := <-resB; err != nil {
		t.Fatalf("other caller: %v", err)
	}
	if got := up.ctxErr.Load(); got != "<nil>" {
		t.Fatalf("upstream ctx ended with %v", got)
	}
	if up.calls.Load() != 1 {
		t.Fatalf("%d upstream calls", up.calls.Load())
	}
	lookup(t, c, up, req("alice", "pw"), ResultHit, nil, 1)
}

func TestGrantIsCopied(t *testing.T) {
	up := &fakeUpstream{answer: passwords(map[string]string{"alice": "pw"}, 0)}
	c, _ := newTestCache(Config{}, up)
	g := lookup(t, c, up, req("alice", "pw"), ResultMiss, nil, 1)
	*g.QuotaBytes = 0
	if g := lookup(t, c, up, req("alice", "pw"), ResultHit, nil, 1); *g.QuotaBytes != 100 {
		t.Fatalf("cached quota changed to %d", *g.QuotaBytes)
	}
}

// TestPasswordNeverStored inspects the keys and entries held in memory.
func TestPasswordNeverStored(t *testing.T) {
	const pw = "hunter2-very-secret"
	up := &fakeUpstream{answer: passwords(map[string]string{"alice": pw}, 0)}
	c, _ := newTestCache(Config{}, up)
	lookup(t, c, up, req("alice", pw), ResultMiss, nil, 1)
	lookup(t, c, up, req("bob", pw), ResultMiss, djangoclient.ErrInvalidCredentials, 2)
	items := c.store.Items()
	if len(items) != 2 {
		t.Fatalf("%d entries, want 2", len(items))
	}
	for k, it := range items {
		if dump := fmt.Sprintf("%q %#v", k, it.Object); strings.Contains(dump, pw) {
			t.Fatalf("password found in cache: %s", dump)
		}
	}
}

// TestSweepReclaimsMemory: expired entries leave memory on the next sweep (real clock).
func TestSweepReclaimsMemory(t *testing.T) {
	up := &fakeUpstream{answer: passwords(nil, 0)}
	c := New(Config{NegativeTTL: time.Millisecond}, up, nil)
	for i := range 10 {
		_, _ = c.Authenticate(context.Background(), req(fmt.Sprint("u", i), "x"))
	}
	time.Sleep(5 * time.Millisecond)
	c.nextSweep.Store(0)
	_, _ = c.Authenticate(context.Background(), req("last", "x"))
	if n := c.store.ItemCount(); n != 1 {
		t.Fatalf("%d entries after sweep, want 1", n)
	}
}

func TestDefaults(t *testing.T) {
	c := New(Config{}, &fakeUpstream{}, nil)
	if c.ttl != DefaultTTL || c.negTTL != DefaultNegativeTTL || c.staleTTL != 0 || c.now == nil || c.log == nil {
		t.Fatalf("defaults: %+v", c)
	}
}

// canonical answers like a case-insensitive (or e-mail) Django backend: any spelling of
// alice, or her address, logs in as "alice" with password "pw"; the grant names "alice".
func canonical(ttl time.Duration) func(djangoclient.AuthRequest) (djangoclient.Grant, error) {
	return func(r djangoclient.AuthRequest) (djangoclient.Grant, error) {
		u := strings.ToLower(r.Username)
		if (u == "alice" || u == "alice@example.com") && r.Password == "pw" {
			return djangoclient.Grant{Username: "alice", Home: "/srv/ftp/alice", Perms: "elr", TTL: ttl}, nil
		}
		return djangoclient.Grant{}, fmt.Errorf("fake: %w", djangoclient.ErrInvalidCredentials)
	}
}

// TestPurgeByGrantedUsername: Django purges by get_username(); entries made by logins typed
// otherwise (ALICE, her e-mail address), positive, negative or stale, go too.
func TestPurgeByGrantedUsername(t *testing.T) {
	var down atomic.Bool
	ok := canonical(0)
	up := &fakeUpstream{answer: func(r djangoclient.AuthRequest) (djangoclient.Grant, error) {
		if down.Load() {
			return djangoclient.Grant{}, fmt.Errorf("fake: %w", djangoclient.ErrUnavailable)
		}
		return ok(r)
	}}
	c, clk := newTestCache(Config{StaleTTL: time.Hour}, up)
	lookupAs(t, c, up, req("ALICE", "pw"), "alice", ResultMiss, nil, 1)
	lookupAs(t, c, up, req("alice@example.com", "pw"), "alice", ResultMiss, nil, 2)
	lookup(t, c, up, req("ALICE", "new"), ResultMiss, djangoclient.ErrInvalidCredentials, 3)
	lookup(t, c, up, req("Alice", "new"), ResultMiss, djangoclient.ErrInvalidCredentials, 4)
	lookupAs(t, c, up, req("ALICE", "pw"), "alice", ResultHit, nil, 4)
	lookup(t, c, up, req("ALICE", "new"), ResultNegativeHit, djangoclient.ErrInvalidCredentials, 4)

	c.Purge("alice")
	lookupAs(t, c, up, req("ALICE", "pw"), "alice", ResultMiss, nil, 5)
	lookupAs(t, c, up, req("alice@example.com", "pw"), "alice", ResultMiss, nil, 6)
	lookup(t, c, up, req("ALICE", "new"), ResultMiss, djangoclient.ErrInvalidCredentials, 7)
	lookup(t, c, up, req("Alice", "new"), ResultMiss, djangoclient.ErrInvalidCredentials, 8)

	// A stale copy goes too: after a purge an outage finds nothing to serve.
	clk.Advance(DefaultTTL + time.Second)
	c.Purge("alice")
	down.Store(true)
	lookup(t, c, up, req("ALICE", "pw"), ResultMiss, djangoclient.ErrUnavailable, 9)
}

// TestGrantNoCache: "ttl": 0 from Django means do not cache: every login asks Django, and
// nothing is kept for stale-if-error, not even an entry an earlier answer left.
func TestGrantNoCache(t *testing.T) {
	var noCache, down atomic.Bool
	ok := passwords(map[string]string{"alice": "pw"}, 0)
	up := &fakeUpstream{answer: func(r djangoclient.AuthRequest) (djangoclient.Grant, error) {
		if down.Load() {
			return djangoclient.Grant{}, fmt.Errorf("fake: %w", djangoclient.ErrUnavailable)
		}
		g, err := ok(r)
		g.NoCache = noCache.Load()
		return g, err
	}}
	c, clk := newTestCache(Config{StaleTTL: time.Hour}, up)
	lookup(t, c, up, req("alice", "pw"), ResultMiss, nil, 1) // cached with the default TTL
	clk.Advance(DefaultTTL)
	noCache.Store(true)
	lookup(t, c, up, req("alice", "pw"), ResultMiss, nil, 2)
	lookup(t, c, up, req("alice", "pw"), ResultMiss, nil, 3)
	down.Store(true)
	lookup(t, c, up, req("alice", "pw"), ResultMiss, djangoclient.ErrUnavailable, 4)
}

// TestPerIP: with PerIP the client address is part of the key, so Django's IP-based
// decisions (lockouts, allow-lists) apply to every new address; IPv4-mapped IPv6 is the
// same client as plain IPv4. Without it, one answer serves every address.
func TestPerIP(t *testing.T) {
	from := func(user, pw, ip string) djangoclient.AuthRequest {
		r := req(user, pw)
		r.ClientIP = ip
		return r
	}
	for _, tt := range []struct {
		perIP               bool
		otherIP, negOtherIP Result
		callsOther          int32
	}{
		{true, ResultMiss, ResultMiss, 2},
		{false, ResultHit, ResultNegativeHit, 1},
	} {
		t.Run(fmt.Sprint("per_ip=", tt.perIP), func(t *testing.T) {
			up := &fakeUpstream{answer: passwords(map[string]string{"alice": "pw"}, 0)}
			c, _ := newTestCache(Config{PerIP: tt.perIP}, up)
			lookup(t, c, up, from("alice", "pw", "192.0.2.1"), ResultMiss, nil, 1)
			lookup(t, c, up, from("alice", "pw", "::ffff:192.0.2.1"), ResultHit, nil, 1)
			lookup(t, c, up, from("alice", "pw", "192.0.2.2"), tt.otherIP, nil, tt.callsOther)
			n := tt.callsOther + 1
			lookup(t, c, up, from("alice", "bad", "192.0.2.1"), ResultMiss, djangoclient.ErrInvalidCredentials, n)
			if tt.perIP {
				n++
			}
			lookup(t, c, up, from("alice", "bad", "192.0.2.3"), tt.negOtherIP, djangoclient.ErrInvalidCredentials, n)
			c.Purge("alice") // purges every address's entries
			lookup(t, c, up, from("alice", "pw", "192.0.2.1"), ResultMiss, nil, n+1)
		})
	}
}
