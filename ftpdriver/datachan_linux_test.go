//go:build linux

package ftpdriver

import (
	"net"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestPassiveListenerIsPlainTCP pins that EPSV's listener is a plain TCP socket. Go
// listens with MPTCP by default; on a kernel with MPTCP that is a second, heavier socket
// behind every passive listener (~20 µs of CPU per transfer, bench/README.md) for a
// connection that carries one transfer. The test server runs in this process, so its
// listener is one of this process's descriptors.
func TestPassiveListenerIsPlainTCP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	port, code := rc.epsvPort()
	if code != 229 {
		t.Fatalf("EPSV = %d", code)
	}
	proto, ok := listenerProtocol(port)
	if !ok {
		t.Fatalf("no listening socket on port %d in this process", port)
	}
	if proto != unix.IPPROTO_TCP {
		t.Errorf("passive listener protocol = %d, want IPPROTO_TCP (%d); %d is MPTCP",
			proto, unix.IPPROTO_TCP, unix.IPPROTO_MPTCP)
	}
}

// listenerProtocol finds this process's listening IPv4 socket on port and returns its
// SO_PROTOCOL.
func listenerProtocol(port int) (int, bool) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, false
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if in4, ok := sa.(*unix.SockaddrInet4); err != nil || !ok || in4.Port != port {
			continue
		}
		if acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || acc != 1 {
			continue
		}
		proto, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PROTOCOL)
		return proto, err == nil
	}
	return 0, false
}

// TestStallWatchNeedsNoGoroutine pins that watching a transfer for stalls starts no
// goroutine: it runs on a timer, so a transfer shorter than one check period (DataTimeout/8)
// costs a timer and one getsockopt (bench/README.md). 100 watches of live TCP
// connections must not add 100 goroutines. Not parallel: it counts goroutines.
func TestStallWatchNeedsNoGoroutine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := tcpProgress(tcpConnOf(c)); !ok {
		t.Skip("no TCP_INFO here: nothing is watched")
	}
	before := runtime.NumGoroutine()
	watches := make([]*stallWatch, 100)
	for i := range watches {
		watches[i] = watchStall(c, time.Minute, func() {})
	}
	grew := runtime.NumGoroutine() - before
	for _, w := range watches {
		if w.stop() {
			t.Error("a live connection was reported stalled")
		}
	}
	if grew >= 50 {
		t.Errorf("100 stall watches started %d goroutines, want none", grew)
	}
}
