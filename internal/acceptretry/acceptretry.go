// Package acceptretry keeps an accept loop alive through the errors a starved host gives
// (out of file descriptors, buffers or memory, an aborted connection, a timeout), the way
// net/http's Server.Serve does: wait 5 ms, doubling to 1 s, reset by a success. Returning
// such an error ends a loop for good, and retrying it at once spins a core until the
// descriptors come back.
package acceptretry

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// The back-off between failed accepts (net/http's).
const (
	MinDelay = 5 * time.Millisecond
	MaxDelay = time.Second
)

// temporaryErrnos are the accept errors that pass: a resource runs short or one pending
// connection failed, while the listener itself is fine.
var temporaryErrnos = []error{
	syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM,
	syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EPROTO,
}

// Temporary reports whether an accept error is worth waiting out; a closed listener's
// is not.
func Temporary(err error) bool {
	if err == nil || errors.Is(err, net.ErrClosed) {
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, e := range temporaryErrnos {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Backoff is one accept loop's retry state (not for concurrent use).
type Backoff struct {
	// Done ends a wait early (Wait then reports false): closed when the listener closes.
	Done <-chan struct{}
	// OnRetry, if set, is told of each temporary error and the wait that follows (log
	// it rate-limited, count it).
	OnRetry func(err error, wait time.Duration)

	delay time.Duration
}

// Wait waits out err when it is temporary and reports true: accept again. It reports
// false at once for any other error, or when Done closes during the wait.
func (b *Backoff) Wait(err error) bool {
	if !Temporary(err) {
		return false
	}
	b.delay = Next(b.delay)
	if b.OnRetry != nil {
		b.OnRetry(err, b.delay)
	}
	t := time.NewTimer(b.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-b.Done:
		return false
	}
}

// Reset starts the back-off over, after a successful accept.
func (b *Backoff) Reset() { b.delay = 0 }

// Next is the wait after one that lasted d (0: the first).
func Next(d time.Duration) time.Duration {
	if d == 0 {
		return MinDelay
	}
	return min(2*d, MaxDelay)
}

// MaxAccepts is the most times a loop using Backoff can have called Accept, every call
// failing, within elapsed: each wait lasts at least its delay, so a slow machine only
// allows more. Tests use it to tell a back-off from a spin without timing assertions.
func MaxAccepts(elapsed time.Duration) int {
	n := 1
	for d := Next(0); elapsed >= d; d = Next(d) {
		elapsed -= d
		n++
	}
	return n
}
