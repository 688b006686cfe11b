package djangoclient

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// eventsDjango plays Django's events endpoint: it verifies each request's signature like
// djftpd.signing, decodes the batch, and answers as its mode says, signed over the answer and
// the request's signature.
type eventsDjango struct {
	t *testing.T

	mu      sync.Mutex
	mode    func(n int, batch []Event) int // status for the n-th request (0-based); nil: 200
	reject  func(Event) string             // with a 200, a non-empty reason rejects the event
	hang    chan struct{}                  // when not nil, requests wait for it to close
	batches [][]Event                      // accepted batches, in order
	bodies  []int                          // body size of every request
	reqs    int
	arrived int // requests received, hanging ones included
	sign    signMode
}

func (d *eventsDjango) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost || r.URL.Path != "/ftp/events/" {
		d.t.Errorf("request %s %s, want POST /ftp/events/", r.Method, r.URL.Path)
	}
	if err := Verify(testSecret, PurposeEvents, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, time.Now(), MaxSkew); err != nil {
		d.t.Errorf("events request signature: %v", err)
	}
	var payload struct {
		Events []Event `json:"events"`
	}
	if err := json.Unmarshal(body, &payload); err != nil {
		d.t.Errorf("events request body: %v", err)
	}
	d.mu.Lock()
	hang := d.hang
	d.arrived++
	d.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
	}
	d.mu.Lock()
	n := d.reqs
	d.reqs++
	d.bodies = append(d.bodies, len(body))
	status := 200
	if d.mode != nil {
		status = d.mode(n, payload.Events)
	}
	var rejected []map[string]string
	if status == 200 {
		kept := payload.Events
		if d.reject != nil {
			kept = nil
			for _, e := range payload.Events {
				if why := d.reject(e); why != "" {
					rejected = append(rejected, map[string]string{"id": e.ID, "error": why})
				} else {
					kept = append(kept, e)
				}
			}
		}
		d.batches = append(d.batches, kept)
	}
	sign := d.sign
	d.mu.Unlock()
	answer := fmt.Sprintf(`{"accepted": %d}`, len(payload.Events))
	if rejected != nil {
		b, _ := json.Marshal(rejected)
		answer = fmt.Sprintf(`{"accepted": %d, "rejected": %s}`, len(payload.Events)-len(rejected), b)
	}
	if status != 200 {
		answer = `{"ok": false, "error": "test"}`
	}
	writeReply(w, r.Header.Get(HeaderSignature), reply{status: status, body: answer, sign: sign, purpose: PurposeEvents})
}

func (d *eventsDjango) setMode(m func(int, []Event) int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mode = m
}

// received returns the IDs of every accepted event, in arrival order.
func (d *eventsDjango) received() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []string
	for _, b := range d.batches {
		for _, e := range b {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

func down(int, []Event) int { return http.StatusServiceUnavailable }

func newEventsDjango(t *testing.T) (*eventsDjango, *httptest.Server) {
	t.Helper()
	d := &eventsDjango{t: t}
	srv := httptest.NewServer(d)
	t.Cleanup(srv.Close)
	return d, srv
}

// newTestQueue builds a queue on srv with fast timings; it is closed at cleanup.
func newTestQueue(t *testing.T, srv *httptest.Server, cfg EventsConfig, log *slog.Logger) *EventQueue {
	t.Helper()
	c := newTestClient(t, srv.URL+"/ftp/", func(c *Config) { c.Timeout = time.Second })
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 20 * time.Millisecond
	}
	q, err := c.NewEventQueue(cfg, log)
	if err != nil {
		t.Fatalf("NewEventQueue: %v", err)
	}
	q.maxBackoff = 50 * time.Millisecond
	q.poisonPause = time.Millisecond
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	return q
}

// start runs q.Run until the test ends (or Close) and checks that it returns.
func start(t *testing.T, q *EventQueue) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- q.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

// waitFor polls cond until it holds; the deadline only guards against a hang.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func testEvent(i int) Event {
	user, path := "alice", fmt.Sprintf("/dir/file-%d.txt", i)
	size := int64(i)
	return Event{
		ID: fmt.Sprintf("ev-%06d", i), Type: EventFileReceived, Session: "s-1",
		Username: &user, ClientIP: "192.0.2.10", Path: &path, Bytes: &size,
	}
}

func emitRange(q *EventQueue, from, to int) {
	for i := from; i < to; i++ {
		q.Emit(testEvent(i))
	}
}

// checkInOrder asserts ids are exactly ev-from..ev-(to-1), once each, in order.
func checkInOrder(t *testing.T, ids []string, from, to int) {
	t.Helper()
	if len(ids) != to-from {
		t.Fatalf("received %d events, want %d", len(ids), to-from)
	}
	for i, id := range ids {
		if want := fmt.Sprintf("ev-%06d", from+i); id != want {
			t.Fatalf("event %d is %s, want %s (order or duplicates broken)", i, id, want)
		}
	}
}

func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segmentSuffix))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func spooledLines(t *testing.T, dir string) int {
	t.Helper()
	n := 0
	for _, f := range segmentFiles(t, dir) {
		n += countRecords(f, 0)
	}
	return n
}

func TestNewEventQueueValidates(t *testing.T) {
	c := newTestClient(t, "http://127.0.0.1:1/ftp/", nil)
	tests := []struct {
		name    string
		cfg     EventsConfig
		wantErr string
	}{
		{"defaults", EventsConfig{}, ""},
		{"batch over 500", EventsConfig{BatchSize: 501}, "batch size 501"},
		{"negative batch", EventsConfig{BatchSize: -1}, "batch size"},
		{"negative queue", EventsConfig{QueueSize: -1}, "queue size"},
		{"negative interval", EventsConfig{FlushInterval: -time.Second}, "flush interval"},
		{"tiny spool", EventsConfig{SpoolMaxBytes: 1000}, "spool max bytes 1000"},
		{"spool dir is a file", EventsConfig{SpoolDir: "/dev/null"}, "event spool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := c.NewEventQueue(tt.cfg, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				if q.cfg.BatchSize != MaxBatchSize || q.cfg.QueueSize != DefaultQueueSize ||
					q.cfg.FlushInterval != DefaultFlushInterval || q.cfg.SpoolMaxBytes != DefaultSpoolMaxBytes || q.cfg.SpoolDir != "" {
					t.Fatalf("defaults not applied: %+v", q.cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewEventQueue = %v, want %q", err, tt.wantErr)
			}
		})
	}
	dir := filepath.Join(t.TempDir(), "spool")
	if _, err := c.NewEventQueue(EventsConfig{SpoolDir: dir}, nil); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("spool dir: %v %v, want mode 0700", st.Mode(), err)
	}
}

// TestEventsBatchesAtMost500: a burst goes out in full batches (BatchSize events, or as many
// as fit in 64 KiB, whichever binds first) without waiting for the interval; Close sends the
// rest; each event exactly once, in order.
func TestEventsBatchesAtMost500(t *testing.T) {
	t.Parallel()
	for _, batch := range []int{0, 100} {
		t.Run(fmt.Sprint("batch size ", batch), func(t *testing.T) {
			t.Parallel()
			d, srv := newEventsDjango(t)
			q := newTestQueue(t, srv, EventsConfig{FlushInterval: time.Hour, BatchSize: batch}, nil)
			start(t, q)
			emitRange(q, 0, 1700)
			waitFor(t, "full batches", func() bool { return q.Stats().Delivered >= 1000 })
			if err := q.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			checkInOrder(t, d.received(), 0, 1700)
			limit := q.cfg.BatchSize
			d.mu.Lock()
			defer d.mu.Unlock()
			for i, b := range d.batches {
				if len(b) > limit {
					t.Errorf("batch %d has %d events, limit %d", i, len(b), limit)
				}
				if d.bodies[i] > MaxBodyBytes {
					t.Errorf("request %d body is %d bytes", i, d.bodies[i])
				}
			}
			if batch == 100 && len(d.batches[0]) != 100 {
				t.Errorf("first batch has %d events, want a full 100", len(d.batches[0]))
			}
		})
	}
}

// TestEventsBodyWithin64KiB: large events are cut into batches Django's 64 KiB limit takes.
func TestEventsBodyWithin64KiB(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	q := newTestQueue(t, srv, EventsConfig{}, nil)
	start(t, q)
	long := "/" + strings.Repeat("x", 2000)
	for i := range 300 {
		e := testEvent(i)
		e.Path = &long
		q.Emit(e)
	}
	waitFor(t, "delivery", func() bool { return q.Stats().Delivered == 300 })
	checkInOrder(t, d.received(), 0, 300)
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.bodies) < 10 {
		t.Errorf("%d requests for 600 KB of events", len(d.bodies))
	}
	for i, n := range d.bodies {
		if n > MaxBodyBytes {
			t.Errorf("request %d body is %d bytes", i, n)
		}
	}
}

// TestEventsFlushInterval: a few events (far below BatchSize) are sent by the timer, again
// and again.
func TestEventsFlushInterval(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	q := newTestQueue(t, srv, EventsConfig{FlushInterval: 30 * time.Millisecond}, nil)
	start(t, q)
	for round := range 3 {
		q.Emit(testEvent(round))
		waitFor(t, "a timed flush", func() bool { return len(d.received()) == round+1 })
	}
	checkInOrder(t, d.received(), 0, 3)
}

// TestEmitFillsIDAndTime: empty IDs are filled with unique 32-hex-digit values, zero times
// with now; invalid events are dropped and counted.
func TestEmitFillsIDAndTime(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	var logs syncBuffer
	q := newTestQueue(t, srv, EventsConfig{}, slog.New(slog.NewTextHandler(&logs, nil)))
	start(t, q)
	before := time.Now()
	for range 100 {
		q.Emit(Event{Type: EventConnect, Session: "s", ClientIP: "192.0.2.1"})
	}
	q.Emit(Event{Type: "no_such_type"})
	waitFor(t, "delivery", func() bool { return q.Stats().Delivered == 100 })
	seen := map[string]bool{}
	d.mu.Lock()
	for _, b := range d.batches {
		for _, e := range b {
			if len(e.ID) != 32 || seen[e.ID] {
				t.Errorf("id %q: want 32 hex digits, unique", e.ID)
			}
			seen[e.ID] = true
			if e.Time.Before(before.Add(-time.Second)) || e.Time.After(time.Now().Add(time.Second)) {
				t.Errorf("time %v not filled with now", e.Time)
			}
		}
	}
	d.mu.Unlock()
	if st := q.Stats(); st.Dropped != 1 {
		t.Errorf("dropped = %d, want 1 (the unknown type)", st.Dropped)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "no_such_type") {
		t.Errorf("unknown type not logged at ERROR:\n%s", logs.String())
	}
}

// TestEventsOutageSpoolAndRecover: Django down → events spooled → Django back → every event
// delivered exactly once, in order, and the spool is empty again.
func TestEventsOutageSpoolAndRecover(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	d.mode = down
	dir := t.TempDir()
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: dir, QueueSize: 300, BatchSize: 100}, nil)
	start(t, q)
	emitRange(q, 0, 1000)
	waitFor(t, "events spooled", func() bool {
		st := q.Stats()
		return st.Queued == 0 && st.SpoolBytes > 0
	})
	if n := spooledLines(t, dir); n != 1000 {
		t.Fatalf("%d events in the spool, want 1000", n)
	}
	emitRange(q, 1000, 1100) // while down: must queue behind the spool
	d.setMode(nil)
	waitFor(t, "delivery", func() bool { return q.Stats().Delivered == 1100 })
	checkInOrder(t, d.received(), 0, 1100)
	waitFor(t, "spool emptied", func() bool { return len(segmentFiles(t, dir)) == 0 })
	if st := q.Stats(); st.Dropped != 0 || st.SpoolBytes != 0 || st.Queued != 0 {
		t.Fatalf("stats after recovery: %+v", st)
	}
}

// TestEventsRestartReplaysSpool: events spooled by one queue are sent first, in order, by a
// new queue on the same directory; nothing is sent twice.
func TestEventsRestartReplaysSpool(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	d.mode = down
	dir := t.TempDir()
	q1 := newTestQueue(t, srv, EventsConfig{SpoolDir: dir, FlushInterval: time.Hour}, nil)
	emitRange(q1, 0, 700)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := q1.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if n := spooledLines(t, dir); n != 700 {
		t.Fatalf("%d events spooled at shutdown, want 700", n)
	}

	d.setMode(nil)
	q2 := newTestQueue(t, srv, EventsConfig{SpoolDir: dir}, nil)
	emitRange(q2, 700, 800)
	start(t, q2)
	waitFor(t, "replay", func() bool { return q2.Stats().Delivered == 800 })
	checkInOrder(t, d.received(), 0, 800)

	// A third queue finds nothing left to send.
	if err := q2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	q3 := newTestQueue(t, srv, EventsConfig{SpoolDir: dir}, nil)
	if st := q3.Stats(); st.SpoolBytes != 0 {
		t.Fatalf("spool after full delivery: %+v", st)
	}
}

// TestEventsRestartKeepsReadOffset: after part of the spool was delivered, a restart sends
// only the rest.
func TestEventsRestartKeepsReadOffset(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	d.mode = down
	dir := t.TempDir()
	q1 := newTestQueue(t, srv, EventsConfig{SpoolDir: dir, BatchSize: 50, FlushInterval: time.Hour}, nil)
	emitRange(q1, 0, 400)
	if err := q1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Django takes three batches, then fails again.
	var taken atomic.Int32
	d.setMode(func(int, []Event) int {
		if taken.Add(1) <= 3 {
			return 200
		}
		return 503
	})
	q2 := newTestQueue(t, srv, EventsConfig{SpoolDir: dir, BatchSize: 50}, nil)
	start(t, q2)
	waitFor(t, "three batches", func() bool { return q2.Stats().Delivered == 150 })
	if err := q2.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	d.setMode(nil)
	q3 := newTestQueue(t, srv, EventsConfig{SpoolDir: dir, BatchSize: 50}, nil)
	start(t, q3)
	waitFor(t, "the rest", func() bool { return q3.Stats().Delivered == 250 })
	checkInOrder(t, d.received(), 0, 400)
}

// TestSpoolCorruptRecordsSkipped: whole records that are not a valid event (bad JSON, an
// unknown type, null) are skipped with a log line and counted; a record torn by a crash is
// cut off at open and counted in TornBytes; the valid events around them are delivered.
func TestSpoolCorruptRecordsSkipped(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	dir := t.TempDir()
	rec := func(payload string) []byte { return appendRecord(nil, []byte(payload)) }
	line := func(i int) string { return string(spoolLine(t, i)) }
	torn := rec(line(99))
	var seg1 []byte
	for _, r := range [][]byte{rec(line(0)), rec("{not json\n"),
		rec(`{"id":"x","type":"nope","time":"2024-01-01T00:00:00Z"}` + "\n"), rec(line(1)),
		rec("null\n"), rec(line(2)), torn[:len(torn)/2]} {
		seg1 = append(seg1, r...)
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000001.seg"), seg1, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "00000000000000000002.seg"), rec(line(3)), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: dir}, slog.New(slog.NewTextHandler(&logs, nil)))
	start(t, q)
	waitFor(t, "delivery", func() bool { return q.Stats().Delivered == 4 })
	checkInOrder(t, d.received(), 0, 4)
	waitFor(t, "spool emptied", func() bool { return len(segmentFiles(t, dir)) == 0 })
	if st := q.Stats(); st.Dropped != 3 || st.TornBytes != int64(len(torn)/2) {
		t.Errorf("stats %+v, want the 3 corrupt records dropped and %d torn bytes", st, len(torn)/2)
	}
	if n := strings.Count(logs.String(), "skipping a corrupt record"); n != 3 {
		t.Errorf("%d corrupt-record logs, want 3:\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "torn") {
		t.Errorf("torn tail not logged:\n%s", logs.String())
	}
}

// TestSpoolBound: a spool limited to 64 KiB drops its oldest events, counts them, logs at
// WARN, and what it keeps is the newest events, delivered in order.
func TestSpoolBound(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	d.mode = down
	dir := t.TempDir()
	var logs syncBuffer
	q1 := newTestQueue(t, srv, EventsConfig{SpoolDir: dir, SpoolMaxBytes: MinSpoolMaxBytes, QueueSize: 100},
		slog.New(slog.NewTextHandler(&logs, nil)))
	start(t, q1)
	const total = 3000
	emitRange(q1, 0, total)
	if err := q1.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var size int64
	for _, f := range segmentFiles(t, dir) {
		st, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		size += st.Size()
	}
	dropped := q1.Stats().Dropped
	if size > MinSpoolMaxBytes || dropped == 0 {
		t.Fatalf("spool is %d bytes (bound %d), %d dropped", size, MinSpoolMaxBytes, dropped)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "spool full") {
		t.Errorf("no WARN about the full spool:\n%s", logs.String())
	}

	d.setMode(nil)
	q2 := newTestQueue(t, srv, EventsConfig{SpoolDir: dir, SpoolMaxBytes: MinSpoolMaxBytes}, nil)
	start(t, q2)
	waitFor(t, "replay", func() bool { return q2.Stats().SpoolBytes == 0 })
	kept := total - int(dropped)
	checkInOrder(t, d.received(), total-kept, total)
}

// TestEventsNoSpoolMemoryBound: without a spool, undelivered events wait in memory up to
// QueueSize; the oldest beyond it are dropped, counted and logged.
func TestEventsNoSpoolMemoryBound(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	d.mode = down
	var logs syncBuffer
	q := newTestQueue(t, srv, EventsConfig{QueueSize: 100, BatchSize: 10}, slog.New(slog.NewTextHandler(&logs, nil)))
	start(t, q)
	emitRange(q, 0, 1000)
	waitFor(t, "a failed attempt", func() bool {
		d.mu.Lock()
		defer d.mu.Unlock()
		return d.reqs > 0
	})
	// The batch being sent counts as queued.
	st := q.Stats()
	if st.Queued > 100+10 || st.Dropped < 1000-110 || uint64(st.Queued)+st.Dropped != 1000 {
		t.Fatalf("stats %+v: want at most 100 (+ a batch in flight) queued and the rest dropped", st)
	}
	d.setMode(nil)
	waitFor(t, "delivery", func() bool { return q.Stats().Queued == 0 })
	// What survives is the newest events, plus a first batch whose retry met Django back.
	ids := d.received()
	if st := q.Stats(); uint64(len(ids))+st.Dropped != 1000 || ids[len(ids)-1] != "ev-000999" {
		t.Fatalf("received %d events ending %s, dropped %d", len(ids), ids[len(ids)-1], st.Dropped)
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			t.Fatalf("out of order: %s after %s", ids[i], ids[i-1])
		}
	}
	waitFor(t, "drop summary", func() bool { return strings.Contains(logs.String(), "events dropped") })
}

// TestEmitNeverBlocks: with Django hanging on every request, 100 000 Emits of
// connection-level events still return (they wait for the disk at most once per QueueSize
// events, never for Django); none is lost, and once Django answers again all of them arrive
// in order.
func TestEmitNeverBlocks(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	hang := make(chan struct{})
	d.hang = hang
	var released sync.Once
	release := func() { released.Do(func() { close(hang) }) }
	t.Cleanup(release)
	dir := t.TempDir()
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: dir, QueueSize: 1000}, nil)
	q.attemptTimeout = time.Hour // the send hangs as long as Django does
	start(t, q)
	q.Emit(testEvent(0))
	waitFor(t, "a hanging request", func() bool { return inFlight(d) })

	const total = 100_000
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i < total; i++ {
			e := testEvent(i)
			e.Type = EventLogin
			q.Emit(e)
		}
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("Emit blocked while Django hangs")
	}
	if st := q.Stats(); st.Dropped != 0 {
		t.Fatalf("stats %+v: nothing may be dropped", st)
	}
	d.mu.Lock()
	d.hang = nil
	d.mu.Unlock()
	release()
	waitFor(t, "delivery", func() bool { return q.Stats().Delivered == total })
	checkInOrder(t, d.received(), 0, total)
}

// inFlight reports that a request reached d (and may be hanging there).
func inFlight(d *eventsDjango) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.arrived > 0
}

// TestEventsShutdownFlushes: Close sends what is queued when Django answers.
func TestEventsShutdownFlushes(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	dir := t.TempDir()
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: dir, FlushInterval: time.Hour}, nil)
	start(t, q)
	emitRange(q, 0, 1234)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatal(err)
	}
	checkInOrder(t, d.received(), 0, 1234)
	if len(segmentFiles(t, dir)) != 0 {
		t.Fatal("spool files left after a full flush")
	}
	q.Emit(testEvent(9999))
	if st := q.Stats(); st.Dropped != 1 || st.Queued != 0 {
		t.Fatalf("Emit after Close: %+v", st)
	}
	if err := q.Run(context.Background()); err == nil {
		t.Fatal("Run after Close succeeded")
	}
}

// TestEventsShutdownSpoolsWhenDjangoHangs: Close cancels a hanging send and, within its
// deadline, saves everything to the spool; nothing is lost.
func TestEventsShutdownSpoolsWhenDjangoHangs(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	hang := make(chan struct{})
	d.hang = hang
	t.Cleanup(func() { close(hang) })
	dir := t.TempDir()
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: dir}, nil)
	q.attemptTimeout = time.Hour
	start(t, q)
	emitRange(q, 0, 50)
	waitFor(t, "a send in flight", func() bool { return inFlight(d) })
	emitRange(q, 50, 80)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := q.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if n := spooledLines(t, dir); n != 80 {
		t.Fatalf("%d events spooled, want 80", n)
	}
}

// TestEventsShutdownWithoutSpoolReportsLoss: no spool and no Django: Close says how many
// events were lost.
func TestEventsShutdownWithoutSpoolReportsLoss(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	d.mode = down
	q := newTestQueue(t, srv, EventsConfig{FlushInterval: time.Hour}, nil)
	emitRange(q, 0, 7)
	err := q.Close(context.Background())
	if err == nil || !strings.Contains(err.Error(), "7 events lost") {
		t.Fatalf("Close = %v, want 7 events lost", err)
	}
	if st := q.Stats(); st.Dropped != 7 {
		t.Fatalf("stats %+v", st)
	}
}

// TestEventsAnswerSignatureVerified: a 200 whose signature is missing, forged, bound to
// another request or made for another purpose does not count as delivered: the batch is
// kept and sent again.
func TestEventsAnswerSignatureVerified(t *testing.T) {
	t.Parallel()
	for _, mode := range []signMode{unsigned, forged, otherRequest, requestOnly, otherPurpose} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			d, srv := newEventsDjango(t)
			d.sign = mode
			var logs syncBuffer
			dir := t.TempDir()
			q := newTestQueue(t, srv, EventsConfig{SpoolDir: dir}, slog.New(slog.NewTextHandler(&logs, nil)))
			start(t, q)
			emitRange(q, 0, 10)
			waitFor(t, "spooled", func() bool { return q.Stats().SpoolBytes > 0 })
			if st := q.Stats(); st.Delivered != 0 {
				t.Fatalf("unverified answer counted as delivered: %+v", st)
			}
			waitFor(t, "ERROR log", func() bool { return strings.Contains(logs.String(), "level=ERROR") })
			d.mu.Lock()
			d.sign = signed
			d.batches = nil
			d.mu.Unlock()
			waitFor(t, "delivery", func() bool { return q.Stats().Delivered == 10 })
			checkInOrder(t, d.received(), 0, 10)
		})
	}
}

// TestEvents413Splits: Django refusing large batches with 413 gets them halved; an event
// that alone is refused is dropped and counted, the others delivered in order.
func TestEvents413Splits(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	d.mode = func(_ int, b []Event) int {
		if len(b) > 10 {
			return http.StatusRequestEntityTooLarge
		}
		for _, e := range b {
			if e.ID == "ev-000042" {
				return http.StatusRequestEntityTooLarge
			}
		}
		return 200
	}
	q := newTestQueue(t, srv, EventsConfig{}, nil)
	start(t, q)
	emitRange(q, 0, 100)
	waitFor(t, "delivery", func() bool { return q.Stats().Delivered == 99 })
	ids := d.received()
	want := append(idRange(0, 42), idRange(43, 100)...)
	if strings.Join(ids, ",") != strings.Join(want, ",") {
		t.Fatalf("received %v", ids)
	}
	if st := q.Stats(); st.Dropped != 1 {
		t.Fatalf("stats %+v, want the one oversized event dropped", st)
	}
}

func idRange(from, to int) []string {
	var ids []string
	for i := from; i < to; i++ {
		ids = append(ids, fmt.Sprintf("ev-%06d", i))
	}
	return ids
}

// TestEvents4xxKeptAndRetried: a 400 (a bug or a version mismatch) is logged at ERROR and
// the batch kept and retried with backoff, never dropped.
func TestEvents4xxKeptAndRetried(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	d.mode = func(n int, _ []Event) int {
		if n < 3 {
			return http.StatusBadRequest
		}
		return 200
	}
	var logs syncBuffer
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: t.TempDir()}, slog.New(slog.NewTextHandler(&logs, nil)))
	start(t, q)
	emitRange(q, 0, 20)
	waitFor(t, "delivery", func() bool { return q.Stats().Delivered == 20 })
	checkInOrder(t, d.received(), 0, 20)
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "400") {
		t.Fatalf("400 not logged at ERROR:\n%s", logs.String())
	}
	if st := q.Stats(); st.Dropped != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestRunTwice(t *testing.T) {
	_, srv := newEventsDjango(t)
	q := newTestQueue(t, srv, EventsConfig{}, nil)
	start(t, q)
	waitFor(t, "Run started", func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return q.running
	})
	if err := q.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

// TestEventsConcurrentEmit: many sessions emit at once (run with -race); per-session order
// holds.
func TestEventsConcurrentEmit(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	var flaky atomic.Int32
	d.mode = func(int, []Event) int {
		if flaky.Add(1)%3 == 0 {
			return 503
		}
		return 200
	}
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: t.TempDir(), QueueSize: 200, BatchSize: 50}, nil)
	start(t, q)
	var wg sync.WaitGroup
	for s := range 16 {
		wg.Go(func() {
			for i := range 200 {
				e := testEvent(i)
				e.ID = fmt.Sprintf("s%02d-%06d", s, i)
				e.Session = fmt.Sprint(s)
				q.Emit(e)
			}
		})
	}
	wg.Wait()
	waitFor(t, "delivery", func() bool { return q.Stats().Delivered >= 16*200 })
	last := map[string]int{}
	seen := map[string]bool{}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, b := range d.batches {
		for _, e := range b {
			if seen[e.ID] {
				continue // at-least-once
			}
			seen[e.ID] = true
			var i int
			fmt.Sscanf(e.ID[4:], "%d", &i)
			if prev, ok := last[e.Session]; ok && i != prev+1 {
				t.Fatalf("session %s: event %d after %d", e.Session, i, prev)
			}
			last[e.Session] = i
		}
	}
	if len(seen) != 16*200 {
		t.Fatalf("%d distinct events, want %d", len(seen), 16*200)
	}
}
