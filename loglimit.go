package main

import (
	"sync"
	"time"
)

// logLimiter lets one log line through per interval and counts the ones it holds back, so a
// flood of bad requests cannot flood the log (or the disk under it).
type logLimiter struct {
	interval time.Duration

	mu         sync.Mutex
	next       time.Time // when the next line may go out
	suppressed int       // lines held back since the last one that went out
}

// allow reports whether a line may be logged at now and, if so, how many were held back
// before it.
func (l *logLimiter) allow(now time.Time) (ok bool, suppressed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.next) {
		l.suppressed++
		return false, 0
	}
	suppressed, l.suppressed = l.suppressed, 0
	l.next = now.Add(l.interval)
	return true, suppressed
}
