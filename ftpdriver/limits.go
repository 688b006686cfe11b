package ftpdriver

import (
	"net/netip"
	"sync"
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
