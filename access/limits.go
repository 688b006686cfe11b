package access

import (
	"net/netip"
	"sync"
	"time"
)

// userSessions counts logged-in sessions per user, for Django's max_sessions.
type userSessions struct {
	mu    sync.Mutex
	count map[string]int
}

func (u *userSessions) acquire(user string, limit *int) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if limit != nil && u.count[user] >= *limit {
		return ErrTooManySessions
	}
	if u.count == nil {
		u.count = make(map[string]int)
	}
	u.count[user]++
	return nil
}

func (u *userSessions) release(user string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.count[user]--; u.count[user] <= 0 {
		delete(u.count, user)
	}
}

// defender bans an address that fails to log in BanThreshold times within BanWindow,
// for BanTime. Only wrong credentials count, never a server fault.
type defender struct {
	threshold      int
	window, banFor time.Duration
	now            func() time.Time

	mu        sync.Mutex
	hosts     map[netip.Addr]*hostRecord
	lastSweep time.Time
}

type hostRecord struct {
	failures    []time.Time // within the window, oldest first
	bannedUntil time.Time
}

func (d *defender) enabled() bool { return d.threshold > 0 }

// banned reports whether ip is banned now.
func (d *defender) banned(ip netip.Addr) bool {
	if !d.enabled() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	r := d.hosts[ip]
	return r != nil && d.now().Before(r.bannedUntil)
}

// failed records a failed login from ip and reports whether ip is now banned.
func (d *defender) failed(ip netip.Addr) bool {
	if !d.enabled() {
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	now := d.now()
	d.sweep(now)
	if d.hosts == nil {
		d.hosts = make(map[netip.Addr]*hostRecord)
	}
	r := d.hosts[ip]
	if r == nil {
		r = &hostRecord{}
		d.hosts[ip] = r
	}
	r.failures = append(pruneBefore(r.failures, now.Add(-d.window)), now)
	if len(r.failures) >= d.threshold {
		r.bannedUntil = now.Add(d.banFor)
		r.failures = r.failures[:0]
		return true
	}
	return false
}

// sweep drops records with nothing left to remember, at most once a window, so the
// map stays as small as the set of recently failing addresses.
func (d *defender) sweep(now time.Time) {
	if now.Sub(d.lastSweep) < d.window {
		return
	}
	d.lastSweep = now
	for ip, r := range d.hosts {
		r.failures = pruneBefore(r.failures, now.Add(-d.window))
		if len(r.failures) == 0 && !now.Before(r.bannedUntil) {
			delete(d.hosts, ip)
		}
	}
}

func pruneBefore(ts []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cutoff) {
		i++
	}
	return ts[i:]
}
