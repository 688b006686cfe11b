//go:build !linux

package ftpdriver

import "net"

// tcpProgress needs Linux's TCP_INFO counters; elsewhere stalled transfers are not cut.
func tcpProgress(*net.TCPConn) (uint64, bool) { return 0, false }
