package ftpdriver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"syscall"
	"time"
)

// errQuotaExceeded stops an upload that would take the user past quota_bytes.
var errQuotaExceeded = errors.New("quota exceeded")

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

// quotaLeft returns how many bytes the user may still store, or -1 without a quota.
func (s *session) quotaLeft() (int64, error) {
	if s.grant.QuotaBytes == nil {
		return -1, nil
	}
	u, err := s.usage(false)
	if err != nil {
		return 0, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	return max(0, *s.grant.QuotaBytes-u.bytes-u.reserved), nil
}

// refreshUsage walks the home again at login when the user has a quota and the last
// walk is stale; a failure is logged, the tracked figure stays.
func (s *session) refreshUsage() {
	if s.grant.QuotaBytes == nil {
		return
	}
	if _, err := s.usage(true); err != nil {
		s.log.Warn("compute disk usage", "err", err)
	}
}

// usage is the user's usage record, walked first if never walked (or, with refresh,
// stale and no upload in flight).
func (s *session) usage(refresh bool) (*userUsage, error) {
	u := s.srv.usage.user(s.grant.Username)
	every, maxEntries, budget := s.srv.usage.settings()
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.known && !(refresh && u.active == 0 && time.Since(u.walked) >= every) {
		return u, nil
	}
	total, complete, err := s.homeUsage(maxEntries, budget)
	if err != nil {
		return nil, fmt.Errorf("compute usage: %w", err)
	}
	if !complete {
		// What was walked is a lower bound; the tracked figure may know more.
		s.log.Warn("home too large to walk for its usage, figure kept from what was seen",
			"max_entries", maxEntries, "budget", budget.String())
		if u.known {
			total = max(total, u.bytes)
		}
	}
	u.bytes, u.known, u.walked = total, true, time.Now()
	return u, nil
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

// quotaGuard holds one upload's quota: what it may write now, reserved from the
// user's record under its lock as the data flows, so concurrent uploads of the same
// user never store more than the quota between them.
type quotaGuard struct {
	u     *userUsage
	limit int64
	free  int64 // bytes the upload may still write: what it frees, then what it reserved
	held  int64 // reserved from u, given back by release
}

// guardQuota starts a quota guard for an upload that frees credit bytes (the old bytes
// it replaces), or returns nil without a quota. A user at or over quota is refused
// before anything opens.
func (s *session) guardQuota(credit int64) (*quotaGuard, error) {
	if s.grant.QuotaBytes == nil {
		return nil, nil
	}
	u, err := s.usage(false)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.bytes+u.reserved >= *s.grant.QuotaBytes {
		return nil, errQuotaExceeded
	}
	u.active++
	return &quotaGuard{u: u, limit: *s.grant.QuotaBytes, free: credit}, nil
}

// reserve takes up to quotaChunk more bytes from what the quota leaves and returns how
// many it got.
func (g *quotaGuard) reserve() int64 {
	g.u.mu.Lock()
	defer g.u.mu.Unlock()
	n := min(quotaChunk, max(0, g.limit-g.u.bytes-g.u.reserved))
	g.u.reserved += n
	g.held += n
	g.free += n
	return n
}

// release ends the upload: its reservation goes, the change it made to the files
// (delta bytes) stays.
func (g *quotaGuard) release(delta int64) {
	g.u.mu.Lock()
	defer g.u.mu.Unlock()
	g.u.reserved -= g.held
	g.u.active--
	g.u.bytes = max(0, g.u.bytes+delta)
}

// addUsage records a change of the user's usage.
func (s *session) addUsage(delta int64) {
	u := s.srv.usage.user(s.grant.Username)
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.known {
		u.bytes = max(0, u.bytes+delta)
	}
}

// available is what AVBL reports: the quota left, else the file system's free space.
// errNoFreeSpaceFigure: a home in object storage has no free space of its own.
var errNoFreeSpaceFigure = errors.New("no free space figure")

func (s *session) available() (int64, error) {
	left, err := s.quotaLeft()
	if err != nil || left >= 0 {
		return left, err
	}
	if s.localRoot() == nil {
		return 0, errNoFreeSpaceFigure
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.grant.Home, &st); err != nil {
		return 0, fmt.Errorf("statfs: %w", err)
	}
	return int64(st.Bavail) * st.Bsize, nil //nolint:gosec // block counts fit in int64
}

// homeUsage sums the home's file sizes: a walk of a local home, a listing of an object
// storage one (bounded by maxEntries keys).
func (s *session) homeUsage(maxEntries int, budget time.Duration) (int64, bool, error) {
	if root := s.localRoot(); root != nil {
		return walkUsage(root.FS(), maxEntries, budget)
	}
	if u, ok := s.fs.(interface {
		Usage(ctx context.Context, maxKeys int) (int64, bool, error)
	}); ok {
		ctx, cancel := context.WithTimeout(s.ctx(), budget)
		defer cancel()
		return u.Usage(ctx, maxEntries)
	}
	return 0, false, nil
}
