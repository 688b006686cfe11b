package access

import (
	"errors"
	"net/netip"
	"sync"
)

// Connection limits, for every protocol.
var (
	// ErrTooManyConnections: Config.MaxConnections connections are open.
	ErrTooManyConnections = errors.New("too many connections")
	// ErrTooManyFromAddress: Config.MaxConnectionsPerIP connections are open from the address.
	ErrTooManyFromAddress = errors.New("too many connections from this address")
)

// Connect counts a new connection from ip against the limits every protocol shares.
// The gates at connect, in order (SFTPGo's ClientConnected): the caller asks Banned,
// then Connect checks the total, then the per-address limit. release uncounts the
// connection; it is safe to call more than once.
func (c *Core) Connect(ip netip.Addr) (release func(), err error) {
	if err := c.conns.acquire(ip, c.cfg.MaxConnections, c.cfg.MaxConnectionsPerIP); err != nil {
		return nil, err
	}
	return sync.OnceFunc(func() { c.conns.release(ip) }), nil
}

// connLimits counts open connections, in total and per client address.
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
		return ErrTooManyConnections
	}
	if maxPerIP > 0 && l.perIP[ip] >= maxPerIP {
		return ErrTooManyFromAddress
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
