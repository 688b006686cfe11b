package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/djftpd/djftpd/internal/exepages"
)

// After a burst of logins the process keeps what the burst left behind: its garbage, the
// 8 KiB stacks the logins grew (a GC shrinks them, and their pages become free heap), and
// spans freed since the last GC. The Go runtime keeps all of it until its periodic GC two
// minutes later and even then returns only part: its scavenger frees down to 110 % of the
// heap in use, scaled by how fast the heap goal was growing at the last GC, which in a burst
// is fast. With 1,000 idle sessions that is 2.5-5 MB of RSS (bench/README.md). The trimmer
// returns it once the burst is over: one forced GC and scavenge per burst, never on the
// login path. The same trim, and one once start-up is over, releases the executable's pages
// that package init and the burst touched (exepages: the page cache keeps them).
const (
	trimPeriod   = time.Second // how often the allocation counter is read
	trimMinAlloc = 8 << 20     // allocated since the last trim: enough to be worth a GC
	trimQuiet    = 256 << 10   // allocated in one period: still quiet (events, a scrape)
)

// memTrimmer calls trim when, after at least minAlloc bytes were allocated since the last
// trim, a whole period passes with at most quiet bytes allocated.
type memTrimmer struct {
	period   time.Duration
	minAlloc uint64
	quiet    uint64
	read     func() uint64 // bytes allocated on the heap since the process started
	trim     func()
}

// newMemTrimmer trims the real process: debug.FreeOSMemory (a GC, then every free page
// returned), then the executable's pages released from its page tables.
func newMemTrimmer(log *slog.Logger) *memTrimmer {
	return &memTrimmer{period: trimPeriod, minAlloc: trimMinAlloc, quiet: trimQuiet,
		read: heapAllocated, trim: func() { debug.FreeOSMemory(); releaseExePages(log) }}
}

// releaseExePages releases the executable's read-only pages (exepages.Release); a failure
// costs only memory, so it is logged at DEBUG.
func releaseExePages(log *slog.Logger) {
	res, err := exepages.Release()
	if err != nil {
		log.Debug("executable's pages not released", "err", err)
		return
	}
	log.Debug("executable's pages released", "mappings", res.Mappings, "resident_bytes", res.Bytes,
		"skipped", res.Skipped)
}

// run watches the allocation counter until ctx ends. The first quiet period also trims:
// start-up (package init, the listeners) is over.
func (t *memTrimmer) run(ctx context.Context) {
	tick := time.NewTicker(t.period)
	defer tick.Stop()
	prev := t.read()
	trimmed, startup := prev, true
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := t.read()
		if (startup && now-prev <= t.quiet) || t.due(prev, now, trimmed) {
			startup = false
			t.trim()
			now = t.read()
			trimmed = now
		}
		prev = now
	}
}

// due reports whether to trim: prev and now are the counter at the start and end of the
// period that just ended, trimmed its value after the last trim.
func (t *memTrimmer) due(prev, now, trimmed uint64) bool {
	return now-prev <= t.quiet && now-trimmed >= t.minAlloc
}

// heapAllocated reads the runtime's cumulative heap allocation counter (no stop-the-world,
// unlike runtime.ReadMemStats).
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}
