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
// is fast. With 1,000 idle sessions that is 2.5-5 MB of RSS (bench/README.md). The same
// holds when many sessions end: their buffers and stacks are garbage no GC comes for. The
// trimmer returns it once the burst is over: one forced GC and scavenge per burst, never on
// the login path. The same trim, and one once start-up is over, releases the executable's
// pages that package init and the burst touched (exepages: the page cache keeps them).
const (
	trimPeriod   = 250 * time.Millisecond // how often the counters are read
	trimMinAlloc = 8 << 20                // allocated since the last trim: enough to be worth a GC
	trimQuiet    = 64 << 10               // allocated in one period: still quiet (events, a scrape)
	trimMinEnded = 256                    // goroutines ended since the last trim: sessions gone
	// A period that allocated under this share of what was allocated since the last trim is
	// quiet too: after a burst, delivering its events to Django allocates 0.1-2 MB a period
	// for a second, which must not hold the trim back; under steady allocation it means at
	// most one trim per 16 periods.
	trimQuietShare = 16
)

// usage is what the trimmer reads each period.
type usage struct {
	allocated  uint64 // bytes allocated on the heap since the process started
	goroutines uint64 // goroutines alive
}

// memTrimmer calls trim when a quiet period passes (at most quiet bytes, or a 16th of what
// was allocated since the last trim) after at least minAlloc bytes were allocated, or the
// goroutine count fell by minEnded from its peak, since the last trim. Code that runs after
// a trim (the burst's events delivered within a second) faults pages of the executable back
// in: release runs once more at the first quiet period after the next busy one.
type memTrimmer struct {
	period   time.Duration
	minAlloc uint64
	quiet    uint64
	minEnded uint64
	read     func() usage
	trim     func()
	release  func()
}

// newMemTrimmer trims the real process: debug.FreeOSMemory (a GC, then every free page
// returned), then the executable's pages released from its page tables.
func newMemTrimmer(log *slog.Logger) *memTrimmer {
	return &memTrimmer{period: trimPeriod, minAlloc: trimMinAlloc, quiet: trimQuiet, minEnded: trimMinEnded,
		read: readUsage, trim: func() { debug.FreeOSMemory(); releaseExePages(log) },
		release: func() { releaseExePages(log) }}
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

// run watches the counters until ctx ends. The first quiet period also trims: start-up
// (package init, the listeners) is over.
func (t *memTrimmer) run(ctx context.Context) {
	tick := time.NewTicker(t.period)
	defer tick.Stop()
	prev := t.read()
	trimmed, peak, startup := prev.allocated, prev.goroutines, true
	wasBusy, releaseAgain := false, false
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := t.read()
		peak = max(peak, now.goroutines)
		busy := !t.quietPeriod(prev, now, trimmed)
		switch {
		case (startup && now.allocated-prev.allocated <= t.quiet) || t.due(prev, now, trimmed, peak):
			startup = false
			t.trim()
			// What was allocated before the trim is trimmed; what came while it ran (a burst
			// starting) counts toward the next trim, not as trimmed.
			trimmed = now.allocated
			now = t.read()
			peak, releaseAgain, busy = now.goroutines, true, false
		case releaseAgain && wasBusy && !busy:
			t.release()
			now, releaseAgain = t.read(), false
		}
		prev, wasBusy = now, busy
	}
}

// quietPeriod reports whether the period from prev to now allocated little: at most quiet
// bytes, or a trimQuietShare-th of what was allocated since the last trim.
func (t *memTrimmer) quietPeriod(prev, now usage, trimmed uint64) bool {
	return now.allocated-prev.allocated <= max(t.quiet, (now.allocated-trimmed)/trimQuietShare)
}

// due reports whether to trim: prev and now are the counters at the start and end of the
// period that just ended, trimmed the allocation counter after the last trim, peak the most
// goroutines seen since.
func (t *memTrimmer) due(prev, now usage, trimmed, peak uint64) bool {
	return t.quietPeriod(prev, now, trimmed) &&
		(now.allocated-trimmed >= t.minAlloc || peak-now.goroutines >= t.minEnded)
}

// readUsage reads the runtime's cumulative heap allocation counter and goroutine count
// (runtime/metrics: no stop-the-world, unlike runtime.ReadMemStats).
func readUsage() usage {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/sched/goroutines:goroutines"}}
	metrics.Read(s)
	var u usage
	if s[0].Value.Kind() == metrics.KindUint64 {
		u.allocated = s[0].Value.Uint64()
	}
	if s[1].Value.Kind() == metrics.KindUint64 {
		u.goroutines = s[1].Value.Uint64()
	}
	return u
}
