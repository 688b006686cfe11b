package main

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestMemTrimmerDue(t *testing.T) {
	t.Parallel()
	tr := &memTrimmer{minAlloc: 8 << 20, quiet: 256 << 10, minEnded: 256}
	const mib = 1 << 20
	for _, tc := range []struct {
		name             string
		prev, now        uint64 // allocation counter
		trimmed          uint64
		goroutines, peak uint64
		want             bool
	}{
		{"quiet after a burst", 20 * mib, 20*mib + 100<<10, 0, 10, 10, true},
		{"burst still running", 10 * mib, 20 * mib, 0, 10, 10, false},
		{"quiet after a small burst", 3 * mib, 3 * mib, 0, 10, 10, false},
		{"quiet since the last trim", 20 * mib, 20 * mib, 20 * mib, 10, 10, false},
		{"quiet after a second burst", 40 * mib, 40 * mib, 20 * mib, 10, 10, true},
		{"sessions ended", 21 * mib, 21 * mib, 20 * mib, 10, 1010, true},
		{"a few sessions ended", 21 * mib, 21 * mib, 20 * mib, 900, 1010, false},
		{"sessions ending", 21 * mib, 22 * mib, 20 * mib, 10, 1010, false},
		{"a burst's events sent", 20 * mib, 21 * mib, 0, 1010, 1010, true},
		{"steady allocation", 20 * mib, 22 * mib, 0, 1010, 1010, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prev, now := usage{allocated: tc.prev, goroutines: tc.peak}, usage{allocated: tc.now, goroutines: tc.goroutines}
			if got := tr.due(prev, now, tc.trimmed, tc.peak); got != tc.want {
				t.Errorf("due(%+v, %+v, %d, %d) = %v, want %v", prev, now, tc.trimmed, tc.peak, got, tc.want)
			}
		})
	}
}

// TestMemTrimmerTrimsOncePerBurst runs the trimmer on the runtime's real allocation counter:
// a burst of allocation is followed by one trim once it stops, and no more while the
// process stays quiet.
func TestMemTrimmerTrimsOncePerBurst(t *testing.T) {
	trims := make(chan struct{}, 8)
	tr := newMemTrimmer(discardLogger())
	tr.period, tr.minAlloc = 20*time.Millisecond, 4<<20
	tr.trim = func() { trims <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tr.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	for burst := range 2 {
		allocate(16 << 20)
		select {
		case <-trims:
		case <-time.After(10 * time.Second):
			t.Fatalf("burst %d: no trim 10s after it ended", burst)
		}
		// A loaded machine may pause the burst for a period, which makes it two bursts.
		for drained := false; !drained; {
			select {
			case <-trims:
			case <-time.After(3 * tr.period):
				drained = true
			}
		}
		select {
		case <-trims:
			t.Fatalf("burst %d: trimmed again with nothing allocated", burst)
		case <-time.After(10 * tr.period):
		}
	}
}

// allocate allocates n bytes in 64 KiB pieces and drops them.
func allocate(n int) {
	var keep [][]byte
	for range n / (64 << 10) {
		keep = append(keep, make([]byte, 64<<10))
		if len(keep) > 16 {
			keep = keep[:0]
		}
	}
}

// TestMemTrimmerTrimsAtStartup: once start-up is over (a first quiet period) the trimmer
// trims once, with nothing allocated since, to release what package init touched.
func TestMemTrimmerTrimsAtStartup(t *testing.T) {
	trims := make(chan struct{}, 8)
	tr := newMemTrimmer(discardLogger())
	tr.period = 20 * time.Millisecond
	tr.read = func() usage { return usage{allocated: 1 << 20, goroutines: 10} } // nothing after start
	tr.trim = func() { trims <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tr.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	select {
	case <-trims:
	case <-time.After(10 * time.Second):
		t.Fatal("no trim after start-up")
	}
	select {
	case <-trims:
		t.Fatal("trimmed again with nothing allocated")
	case <-time.After(10 * tr.period):
	}
}

// TestMemTrimmerTrimsWhenSessionsEnd: many goroutines ending (sessions closing: their
// buffers and stacks become garbage) trim once they are gone, with little allocated.
func TestMemTrimmerTrimsWhenSessionsEnd(t *testing.T) {
	trims := make(chan struct{}, 8)
	tr := newMemTrimmer(discardLogger())
	tr.period = 20 * time.Millisecond
	tr.trim = func() { trims <- struct{}{} }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tr.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select { // the start-up trim
	case <-trims:
	case <-time.After(10 * time.Second):
		t.Fatal("no trim after start-up")
	}

	end := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 * trimMinEnded {
		wg.Go(func() { <-end })
	}
	time.Sleep(10 * tr.period) // the trimmer sees them
	select {
	case <-trims:
		t.Fatal("trimmed while the goroutines ran, with nothing allocated")
	default:
	}
	close(end)
	wg.Wait()
	select {
	case <-trims:
	case <-time.After(10 * time.Second):
		t.Fatalf("no trim after %d goroutines ended", 2*trimMinEnded)
	}
}

// TestMemTrimmerReleasesAgainAfterEvents: after a trim, code that runs once more (the burst's
// events delivered) is released at the next quiet period, once. The test hands the trimmer
// each reading of the counters itself, when the trimmer asks for it (so all it did with the
// reading before is done): what the test allocates lands in the period it means. It had
// added the burst while the trimmer was between its trim and the reading after it, which
// counted the burst as trimmed ("no trim after the burst", once in a CI run).
func TestMemTrimmerReleasesAgainAfterEvents(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	wants, readings := make(chan struct{}), make(chan usage)
	trims, releases := make(chan struct{}, 8), make(chan struct{}, 8)
	tr := newMemTrimmer(discardLogger())
	tr.period = time.Millisecond
	tr.read = func() usage {
		select {
		case wants <- struct{}{}:
		case <-ctx.Done():
			return usage{}
		}
		select {
		case r := <-readings:
			return r
		case <-ctx.Done():
			return usage{}
		}
	}
	tr.trim = func() { trims <- struct{}{} }
	tr.release = func() { releases <- struct{}{} }
	done := make(chan struct{})
	go func() { defer close(done); tr.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	// step waits for the trimmer to ask for its next reading, checks what it did since the
	// last one (want: trims, releases or nil for neither), and gives it allocated.
	step := func(want chan struct{}, what string, allocated uint64) {
		t.Helper()
		select {
		case <-wants:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the trimmer asks for no reading", what)
		}
		for name, c := range map[string]chan struct{}{"trim": trims, "release": releases} {
			select {
			case <-c:
				if c != want {
					t.Fatalf("%s: a %s", what, name)
				}
				want = nil
			default:
			}
		}
		if want != nil {
			t.Fatalf("%s: nothing done", what)
		}
		readings <- usage{allocated: allocated, goroutines: 10}
	}
	const mib, events = 1 << 20, 17<<20 + 512<<10
	step(nil, "at start", mib)
	step(nil, "before the first period", mib)      // a quiet first period: start-up is over
	step(trims, "after start-up", mib)             // the reading after the trim
	step(nil, "before the burst", 17*mib)          // a burst of logins
	step(nil, "during the burst", 17*mib)          // quiet again
	step(trims, "after the burst", 17*mib)         // the reading after the trim
	step(nil, "before the events", events)         // its events sent: too little for a trim
	step(nil, "while the events are sent", events) // quiet again
	step(releases, "after the events", events)     // the reading after the release
	for range 4 {
		step(nil, "with nothing allocated", events)
	}
	step(nil, "with nothing allocated", events)
}

// TestMemTrimmerBurstDuringTrim: a burst that starts while the trimmer trims (between its
// reading before the trim and the one after) is trimmed once it is over, not counted as
// trimmed.
func TestMemTrimmerBurstDuringTrim(t *testing.T) {
	trims := make(chan struct{}, 8)
	var mu sync.Mutex
	allocated := uint64(1 << 20)
	tr := newMemTrimmer(discardLogger())
	tr.period = time.Millisecond
	tr.read = func() usage {
		mu.Lock()
		defer mu.Unlock()
		return usage{allocated: allocated, goroutines: 10}
	}
	first := true
	tr.trim = func() {
		mu.Lock()
		if first { // a burst of logins starts as the start-up trim runs
			allocated += 16 << 20
			first = false
		}
		mu.Unlock()
		select {
		case trims <- struct{}{}:
		default:
		}
	}
	tr.release = func() {}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); tr.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for _, what := range []string{"after start-up", "after the burst"} {
		select {
		case <-trims:
		case <-time.After(10 * time.Second):
			t.Fatalf("no trim %s", what)
		}
	}
}
