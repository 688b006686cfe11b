// Package acceptretrytest has a listener that fails its accepts as a starved host does,
// for the tests of the accept loops that use acceptretry.
package acceptretrytest

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

// Listener returns EMFILE (as *net.OpError, as the net package does) from Accept while
// Failing is set, and counts those calls; otherwise it delegates to the real listener.
type Listener struct {
	net.Listener
	Failing atomic.Bool
	Fails   atomic.Int64 // Accept calls that failed
}

// New wraps ln, failing from the start.
func New(ln net.Listener) *Listener {
	l := &Listener{Listener: ln}
	l.Failing.Store(true)
	return l
}

// ErrEMFILE is the error Accept fails with: "too many open files".
func ErrEMFILE(addr net.Addr) error {
	return &net.OpError{Op: "accept", Net: "tcp", Addr: addr, Err: os.NewSyscallError("accept4", syscall.EMFILE)}
}

func (l *Listener) Accept() (net.Conn, error) {
	if l.Failing.Load() {
		l.Fails.Add(1)
		return nil, ErrEMFILE(l.Addr())
	}
	return l.Listener.Accept()
}
