package ftpdriver

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"syscall"
)

// errQuotaExceeded stops an upload that would take the user past quota_bytes.
var errQuotaExceeded = errors.New("quota exceeded")

// usageTracker keeps each user's disk usage, computed once (on the first session that
// needs it) and then kept current by uploads and deletes, so a login never walks a
// large home twice.
type usageTracker struct {
	mu    sync.Mutex
	users map[string]*userUsage
}

type userUsage struct {
	mu    sync.Mutex
	known bool
	bytes int64
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

// quotaLeft returns how many bytes the user may still store, or -1 without a quota.
func (s *session) quotaLeft() (int64, error) {
	if s.grant.QuotaBytes == nil {
		return -1, nil
	}
	used, err := s.used()
	if err != nil {
		return 0, err
	}
	return max(0, *s.grant.QuotaBytes-used), nil
}

// used is the bytes in the user's home, computed by walking it the first time.
func (s *session) used() (int64, error) {
	u := s.srv.usage.user(s.grant.Username)
	u.mu.Lock()
	defer u.mu.Unlock()
	if !u.known {
		var total int64
		err := fs.WalkDir(s.root.FS(), ".", func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() {
				if info, err := d.Info(); err == nil {
					total += info.Size()
				}
			}
			return nil
		})
		if err != nil {
			return 0, fmt.Errorf("compute usage: %w", err)
		}
		u.bytes, u.known = total, true
	}
	return u.bytes, nil
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
func (s *session) available() (int64, error) {
	left, err := s.quotaLeft()
	if err != nil || left >= 0 {
		return left, err
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.grant.Home, &st); err != nil {
		return 0, fmt.Errorf("statfs: %w", err)
	}
	return int64(st.Bavail) * st.Bsize, nil //nolint:gosec // block counts fit in int64
}
