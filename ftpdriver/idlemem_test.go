package ftpdriver

import (
	"runtime"
	"testing"
)

// TestIdleSessionStackShrinks: an idle logged-in session parks in controlConn.Read under
// goftp's line reader, and the GC halves a parked goroutine's stack only while it uses
// less than a quarter of it. With Read's cold paths out of its frame, the 8 KiB stack a
// login grows shrinks to 4 KiB: about 4 KB less RSS per idle session (issue 18 item 4).
// Not parallel: it reads the process's stack total.
func TestIdleSessionStackShrinks(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector enlarges frames; the bound is for the real build")
	}
	ts := newTestServer(t)
	const n = 200
	before := stackAfterGC()
	for range n {
		ts.dial(t).login("alice", "alice-pw")
	}
	per := (int64(stackAfterGC()) - int64(before)) / n
	t.Logf("goroutine stack per idle session after GC: %d bytes", per)
	if per > 6<<10 {
		t.Errorf("idle session keeps %d bytes of stack, want ≤ 6 KiB (a 4 KiB stack)", per)
	}
}

// stackAfterGC is the stack memory in use once three GCs have had the chance to shrink
// every parked goroutine's stack (each GC halves it at most once).
func stackAfterGC() uint64 {
	runtime.GC()
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.StackInuse
}
