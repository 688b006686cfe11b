package access

import (
	"context"
	"fmt"
	"io/fs"
	"sync"
	"time"
)

// Quota errors, for every protocol.
var (
	// ErrQuotaUsedUp: the user is at or over quota before an upload starts.
	ErrQuotaUsedUp = fmt.Errorf("quota used up before the upload")
	// ErrQuotaExceeded: an upload would take the user past quota.
	ErrQuotaExceeded = fmt.Errorf("quota exceeded")
)

// usageTracker keeps each user's disk usage, shared by all of the user's sessions on
// this server: computed by walking the home, then kept current by uploads and deletes,
// and walked again at a login when older than the refresh interval, so replicas that
// share a home converge.
type usageTracker struct {
	mu    sync.Mutex
	users map[string]*userUsage
	// Zero means the default (usageRefresh, usageWalkMaxEntries, usageWalkBudget);
	// tests set them.
	refresh    time.Duration
	maxEntries int
	budget     time.Duration
}

// A login walks the home again when the last walk is older than usageRefresh. A walk
// reads at most usageWalkMaxEntries entries for at most usageWalkBudget.
const (
	usageRefresh        = 30 * time.Second
	usageWalkMaxEntries = 100_000
	usageWalkBudget     = 2 * time.Second
	// quotaChunk is how much an upload reserves at a time: small enough that another
	// session's upload still finds room, large enough to cost nothing per byte.
	quotaChunk = 1 << 20
)

type userUsage struct {
	mu       sync.Mutex
	known    bool
	bytes    int64     // on disk: walked, then kept current
	reserved int64     // held by uploads in flight against the quota
	active   int       // uploads in flight: a walk now would count their partial bytes
	walked   time.Time // when bytes was last walked
}

func (t *usageTracker) user(name string) *userUsage {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.users == nil {
		t.users = make(map[string]*userUsage)
	}
	u, ok := t.users[name]
	if !ok {
		u = &userUsage{}
		t.users[name] = u
	}
	return u
}

// settings returns the refresh interval and walk bounds, defaults applied.
func (t *usageTracker) settings() (refresh time.Duration, maxEntries int, budget time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	refresh, maxEntries, budget = t.refresh, t.maxEntries, t.budget
	if refresh == 0 {
		refresh = usageRefresh
	}
	if maxEntries == 0 {
		maxEntries = usageWalkMaxEntries
	}
	if budget == 0 {
		budget = usageWalkBudget
	}
	return refresh, maxEntries, budget
}

// SetUsageWalk changes when a login walks a home again (refresh) and how far a walk
// goes; zero keeps a default. For sites whose replicas share homes, and for tests.
func (c *Core) SetUsageWalk(refresh time.Duration, maxEntries int, budget time.Duration) {
	c.usage.mu.Lock()
	defer c.usage.mu.Unlock()
	c.usage.refresh, c.usage.maxEntries, c.usage.budget = refresh, maxEntries, budget
}

// QuotaLeft returns how many bytes the user may still store, or -1 without a quota.
func (u *User) QuotaLeft() (int64, error) {
	if u.grant.QuotaBytes == nil {
		return -1, nil
	}
	r, err := u.usage(false)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return max(0, *u.grant.QuotaBytes-r.bytes-r.reserved), nil
}

// RefreshUsage walks the home again (at login) when the user has a quota and the
// last walk is stale; on error the tracked figure stays.
func (u *User) RefreshUsage() error {
	if u.grant.QuotaBytes == nil {
		return nil
	}
	_, err := u.usage(true)
	return err
}

// usage is the user's usage record, walked first if never walked (or, with refresh,
// stale and no upload in flight).
func (u *User) usage(refresh bool) (*userUsage, error) {
	r := u.core.usage.user(u.grant.Username)
	every, maxEntries, budget := u.core.usage.settings()
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known && !(refresh && r.active == 0 && time.Since(r.walked) >= every) {
		return r, nil
	}
	total, complete, err := u.homeUsage(maxEntries, budget)
	if err != nil {
		return nil, fmt.Errorf("compute usage: %w", err)
	}
	if !complete {
		// What was walked is a lower bound; the tracked figure may know more.
		u.core.log.Warn("home too large to walk for its usage, figure kept from what was seen",
			"user", u.grant.Username, "max_entries", maxEntries, "budget", budget.String())
		if r.known {
			total = max(total, r.bytes)
		}
	}
	r.bytes, r.known, r.walked = total, true, time.Now()
	return r, nil
}

// GuardQuota starts a quota guard for an upload that frees credit bytes (the old
// bytes it replaces), or returns nil without a quota. A user at or over quota gets
// ErrQuotaUsedUp before anything opens.
func (u *User) GuardQuota(credit int64) (*QuotaGuard, error) {
	if u.grant.QuotaBytes == nil {
		return nil, nil
	}
	r, err := u.usage(false)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.bytes+r.reserved >= *u.grant.QuotaBytes {
		return nil, ErrQuotaUsedUp
	}
	r.active++
	return &QuotaGuard{u: r, limit: *u.grant.QuotaBytes, free: credit}, nil
}

// AddUsage records a change of the user's usage made outside an upload (a delete).
func (u *User) AddUsage(delta int64) {
	r := u.core.usage.user(u.grant.Username)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.known {
		r.bytes = max(0, r.bytes+delta)
	}
}

// walkUsage sums the sizes of the regular files under fsys, upload temporaries
// included, reading at most maxEntries entries for at most budget; complete is false
// when it stopped early.
func walkUsage(fsys fs.FS, maxEntries int, budget time.Duration) (total int64, complete bool, err error) {
	deadline := time.Now().Add(budget)
	seen := 0
	complete = true
	err = fs.WalkDir(fsys, ".", func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		seen++
		if seen > maxEntries || time.Now().After(deadline) {
			complete = false
			return fs.SkipAll
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				total += info.Size()
			}
		}
		return nil
	})
	return total, complete, err
}

// QuotaGuard holds one upload's quota: what it may write now, reserved from the
// user's record under its lock as the data flows, so concurrent uploads of the same
// user never store more than the quota between them.
type QuotaGuard struct {
	u     *userUsage
	limit int64
	free  int64 // bytes the upload may still write: what it frees, then what it reserved (Free, Use)
	held  int64 // reserved from u, given back by release
}

// Reserve takes up to quotaChunk more bytes from what the quota leaves and returns how
// many it got.
func (g *QuotaGuard) Reserve() int64 {
	g.u.mu.Lock()
	defer g.u.mu.Unlock()
	n := min(quotaChunk, max(0, g.limit-g.u.bytes-g.u.reserved))
	g.u.reserved += n
	g.held += n
	g.free += n
	return n
}

// Release ends the upload: its reservation goes, the change it made to the files
// (delta bytes) stays.
func (g *QuotaGuard) Release(delta int64) {
	g.u.mu.Lock()
	defer g.u.mu.Unlock()
	g.u.reserved -= g.held
	g.u.active--
	g.u.bytes = max(0, g.u.bytes+delta)
}

// Free is how many bytes the upload may write before it must Reserve more.
func (g *QuotaGuard) Free() int64 { return g.free }

// Use records n bytes written against what is free.
func (g *QuotaGuard) Use(n int64) { g.free -= n }

// homeUsage sums the home's file sizes: a walk of a local home, a listing of an object
// storage one (at most maxEntries keys, within budget).
func (u *User) homeUsage(maxEntries int, budget time.Duration) (int64, bool, error) {
	if root := u.Root(); root != nil {
		return walkUsage(root.FS(), maxEntries, budget)
	}
	if lister, ok := u.fs.(interface {
		Usage(ctx context.Context, maxKeys int) (int64, bool, error)
	}); ok {
		ctx, cancel := context.WithTimeout(context.Background(), budget)
		defer cancel()
		return lister.Usage(ctx, maxEntries)
	}
	return 0, false, nil
}
