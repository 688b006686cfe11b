package ftpdriver

import (
	"net"

	"golang.org/x/sys/unix"
)

// tcpProgress is the bytes acknowledged by the peer plus the bytes received on tc
// (TCP_INFO, Linux 4.2+); false when it cannot be read.
func tcpProgress(tc *net.TCPConn) (uint64, bool) {
	if tc == nil {
		return 0, false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0, false
	}
	var info *unix.TCPInfo
	cerr := rc.Control(func(fd uintptr) {
		info, err = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	})
	if cerr != nil || err != nil {
		return 0, false
	}
	return info.Bytes_acked + info.Bytes_received, true
}
