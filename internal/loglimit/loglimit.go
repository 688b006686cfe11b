// Package loglimit keeps a flood of one kind of log line (bad signatures, refused
// PROXY peers) from flooding the log, or the disk under it.
package loglimit

import (
	"sync"
	"time"
)

// Limiter lets one line through per Interval and counts the ones it holds back. It is
// safe for concurrent use; the zero Interval lets every line through.
type Limiter struct {
	Interval time.Duration

	mu         sync.Mutex
	next       time.Time // when the next line may go out
	suppressed int       // lines held back since the last one that went out
}

// Allow reports whether a line may be logged at now and, if so, how many were held
// back before it.
func (l *Limiter) Allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	suppressed, l.suppressed = l.suppressed, 0
	l.next = now.Add(l.Interval)
	return true, suppressed
}
