package ftpdriver

import (
	"fmt"
	"syscall"
)

// The user's disk usage and quota live in package access (access.User); these are
// the FTP session's calls into it.

// refreshUsage walks the home again at login when it is due; a failure is logged, the
// tracked figure stays.
func (s *session) refreshUsage() {
	if err := s.user.RefreshUsage(); err != nil {
		s.log.Warn("compute disk usage", "err", err)
	}
}

// available is what AVBL reports: the quota left, else the file system's free space.
func (s *session) available() (int64, error) {
	left, err := s.user.QuotaLeft()
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
