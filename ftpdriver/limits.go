package ftpdriver

import (
	"net/netip"
	"sync"
	"time"
)

// Gates at connect, in order (SFTPGo's ClientConnected): banned, then the total
// connection limit, then the per-address limit. Each refusal is a 421 with a fixed
// text; the detail goes to the log.

// connLimits counts open control connections, in total and per client address.
type connLimits struct {
	mu    sync.Mutex
	total int
	perIP map[netip.Addr]int
}

// acquire counts a new connection from ip, or says which limit it would exceed
// (0 means no limit).
func (l *connLimits) acquire(ip netip.Addr, maxTotal, maxPerIP int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if maxTotal > 0 && l.total >= maxTotal {
		return errTooManyConns
	}
	if maxPerIP > 0 && l.perIP[ip] >= maxPerIP {
		return errTooManyFromIP
	}
	if l.perIP == nil {
		l.perIP = make(map[netip.Addr]int)
	}
	l.total++
	l.perIP[ip]++
	return nil
}

func (l *connLimits) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total--
	if l.perIP[ip]--; l.perIP[ip] <= 0 {
		delete(l.perIP, ip)
	}
}

// passiveLimits counts open passive listeners per client address.
type passiveLimits struct {
	mu    sync.Mutex
	perIP map[netip.Addr]int
}

// acquire counts a new passive listener for ip (max 0: no limit) and returns its
// release, safe to call more than once and from any goroutine.
func (l *passiveLimits) acquire(ip netip.Addr, maxPerIP int) (release func(), err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if maxPerIP > 0 && l.perIP[ip] >= maxPerIP {
		return nil, errTooManyPasv
	}
	if l.perIP == nil {
		l.perIP = make(map[netip.Addr]int)
	}
	l.perIP[ip]++
	return sync.OnceFunc(func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.perIP[ip]--; l.perIP[ip] <= 0 {
			delete(l.perIP, ip)
		}
	}), nil
}

// userSessions counts logged-in sessions per user, for Django's max_sessions.
type userSessions struct {
	mu    sync.Mutex
	count map[string]int
}

func (u *userSessions) acquire(user string, limit *int) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if limit != nil && u.count[user] >= *limit {
		return errTooManyUser
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
