package djangoclient

import (
	"context"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDurableEmitOnDiskBeforeReturn: with a spool, Emit of completed work (file_received)
// returns only once the event is in a spool segment, with Django down and Run not even
// started; a connection-level event stays in memory until a flush.
func TestDurableEmitOnDiskBeforeReturn(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	d.mode = down
	dir := t.TempDir()
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: dir, FlushInterval: time.Hour}, nil)
	login := testEvent(0)
	login.Type = EventLogin
	q.Emit(login)
	q.Emit(testEvent(1))
	if n := spooledLines(t, dir); n != 2 {
		t.Fatalf("%d events on disk after Emit(file_received) returned, want 2 (the login rides along)", n)
	}
	q.Emit(login)
	if n := spooledLines(t, dir); n != 2 || q.Stats().Queued != 1 {
		t.Fatalf("%d events on disk, %+v: a login waits in memory", n, q.Stats())
	}
}

// TestEventsCrashReplay: a process killed right after Emit returned (no Close, no Run)
// leaves every durable event in the spool; the next process delivers each once, in order,
// even with a record torn by the crash at the end of the spool.
func TestEventsCrashReplay(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	d.mode = down
	dir := t.TempDir()
	c := newTestClient(t, srv.URL+"/ftp/", nil)
	crashed, err := c.NewEventQueue(EventsConfig{SpoolDir: dir, FlushInterval: time.Hour}, nil)
	if err != nil {
		t.Fatal(err)
	}
	emitRange(crashed, 0, 50) // then the process dies: no Close
	segs := segmentFiles(t, dir)
	f, err := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	torn := appendRecord(nil, spoolLine(t, 50))
	if _, err := f.Write(torn[:len(torn)-7]); err != nil {
		t.Fatal(err)
	}
	f.Close()

	d.setMode(nil)
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: dir}, nil)
	if st := q.Stats(); st.TornBytes != int64(len(torn)-7) {
		t.Fatalf("stats %+v, want the torn record counted", st)
	}
	emitRange(q, 51, 60)
	start(t, q)
	waitFor(t, "replay", func() bool { return q.Stats().Delivered == 59 })
	ids := d.received()
	checkInOrder(t, ids[:50], 0, 50)
	checkInOrder(t, ids[50:], 51, 60)
}

// TestGroupCommit: 100 concurrent durable Emits (a burst of small uploads) share fsyncs:
// while the first fsync runs the others queue, and the next fsync carries them all.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	_, srv := newEventsDjango(t)
	dir := t.TempDir()
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: dir, FlushInterval: time.Hour}, nil)
	b := q.backlog.(*spoolBacklog)
	var syncs atomic.Int32
	b.sp.syncFile = func(f *os.File) error {
		if syncs.Add(1) == 1 { // hold the first fsync until the rest of the burst queued
			waitFor(t, "the burst queued", func() bool { return b.queued() == 99 })
		}
		return f.Sync()
	}
	const burst = 100
	var wg sync.WaitGroup
	for i := range burst {
		wg.Go(func() { q.Emit(testEvent(i)) })
	}
	wg.Wait()
	if n := spooledLines(t, dir); n != burst {
		t.Fatalf("%d events on disk, want %d", n, burst)
	}
	if n := syncs.Load(); n > 2 {
		t.Fatalf("%d fsyncs for a burst of %d durable events, want 2", n, burst)
	}
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestSpoolWriteFailureKeepsEvents: when the spool cannot be written, a durable Emit still
// returns (the FTP reply is not held hostage), the event waits in memory in order, and the
// next commit writes it.
func TestSpoolWriteFailureKeepsEvents(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	dir := t.TempDir()
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: dir, FlushInterval: time.Hour}, nil)
	b := q.backlog.(*spoolBacklog)
	var fail atomic.Bool
	fail.Store(true)
	b.sp.syncFile = func(f *os.File) error {
		if fail.Load() {
			return os.ErrInvalid
		}
		return f.Sync()
	}
	emitRange(q, 0, 3)
	if st := q.Stats(); st.Queued != 3 || st.SpoolBytes != 0 {
		t.Fatalf("stats %+v: want 3 events in memory, nothing readable on disk", st)
	}
	fail.Store(false)
	emitRange(q, 3, 5)
	if err := q.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkInOrder(t, d.received(), 0, 5)
}

// TestBusyQueueSendsFullBatches: while Django answers one batch, the events that arrive wait
// for a full batch (or the interval) instead of going out as a small batch of their own
// right after the answer: per request, Django costs several times what an event costs.
func TestBusyQueueSendsFullBatches(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	hang := make(chan struct{})
	d.hang = hang // set before any request: no lock needed yet
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: t.TempDir(), BatchSize: 100, FlushInterval: time.Hour}, nil)
	start(t, q)
	emitRange(q, 0, 100) // a full batch: sent at once, and held by Django
	waitFor(t, "the first batch at Django", func() bool { return inFlight(d) })
	emitRange(q, 100, 130) // arrive during the round trip
	close(hang)
	waitFor(t, "the first batch delivered", func() bool { return q.Stats().Delivered >= 100 })
	emitRange(q, 130, 200) // with the 30 waiting, a full batch again
	waitFor(t, "the second batch delivered", func() bool { return q.Stats().Delivered == 200 })
	d.mu.Lock()
	sizes := make([]int, len(d.batches))
	for i, b := range d.batches {
		sizes[i] = len(b)
	}
	d.mu.Unlock()
	if !slices.Equal(sizes, []int{100, 100}) {
		t.Fatalf("batch sizes %v, want [100 100]", sizes)
	}
	checkInOrder(t, d.received(), 0, 200)
}

// TestSpoolKicksAtABodysWorth: with a spool, a request body's worth of events is sent at
// once, without waiting for the interval, even far below BatchSize events.
func TestSpoolKicksAtABodysWorth(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: t.TempDir(), FlushInterval: time.Hour}, nil)
	start(t, q)
	long := strings.Repeat("x", 1000)
	for i := range 70 { // ~75 KB of events: more than one body, far fewer than 500
		e := testEvent(i)
		e.Path = &long
		q.Emit(e)
	}
	waitFor(t, "a full body sent", func() bool { return q.Stats().Delivered > 0 })
	d.mu.Lock()
	defer d.mu.Unlock()
	if n := len(d.batches[0]); n < 50 {
		t.Fatalf("first batch of %d events, want a body's worth (~60)", n)
	}
}
