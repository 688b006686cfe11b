package ftpdriver

import (
	"net/netip"
	"sync"
)

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
