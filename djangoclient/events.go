package djangoclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Defaults and limits of EventsConfig.
const (
	// DefaultSpoolMaxBytes bounds the spool's disk usage when EventsConfig.SpoolMaxBytes is 0.
	DefaultSpoolMaxBytes = 64 << 20
	// MinSpoolMaxBytes is the smallest accepted spool bound: one full request body.
	MinSpoolMaxBytes = MaxBodyBytes
	// DefaultFlushInterval is the longest an event waits in memory while Django answers.
	DefaultFlushInterval = time.Second
	// MaxBatchSize is the most events in one request (DESIGN.md section 2), also the default.
	MaxBatchSize = 500
	// DefaultQueueSize bounds the events held in memory.
	DefaultQueueSize = 10000

	eventsMaxRetries  = 2
	eventsMaxBackoff  = 30 * time.Second
	maxEventIDBytes   = 128
	eventIDRandomSize = 16
)

// errQueueClosed is returned by Run after Close.
var errQueueClosed = errors.New("event queue closed")

// EventsConfig configures an EventQueue. Build it as a literal; NewEventQueue validates it.
type EventsConfig struct {
	// SpoolDir is where events wait on disk while Django cannot take them (created 0700).
	// Empty turns spooling off: undelivered events then wait in memory only, and the oldest
	// are dropped once QueueSize is reached.
	SpoolDir string
	// SpoolMaxBytes bounds the disk usage of the spool; when it is full the oldest events
	// are dropped. Zero means DefaultSpoolMaxBytes; otherwise at least MinSpoolMaxBytes.
	SpoolMaxBytes int64
	// FlushInterval is how often queued events are sent; zero means DefaultFlushInterval.
	FlushInterval time.Duration
	// BatchSize is the most events per request and the queue length that triggers a send
	// before the interval; zero means MaxBatchSize, which is also the maximum. A batch is
	// also cut so that its body stays within MaxBodyBytes.
	BatchSize int
	// QueueSize bounds the events held in memory; zero means DefaultQueueSize. When it is
	// reached, the queue moves to the spool (or, without one, the oldest event is dropped).
	QueueSize int
}

// EventStats is a snapshot of an EventQueue's counters, for metrics.
type EventStats struct {
	Queued     int    // events held in memory, including a batch being sent
	SpoolBytes int64  // disk usage of the spool's segment files
	Dropped    uint64 // events lost: spool or memory bound, corrupt spool lines, invalid events, poison
	Poisoned   uint64 // of Dropped: events Django kept refusing (400/422/500) while taking others
	Rejected   uint64 // events Django's signed 200 listed as rejected for good (not in Delivered)
	Delivered  uint64 // events Django acknowledged with a signed 200
}

// EventQueue delivers events to POST {BaseURL}events/ (DESIGN.md sections 2 and 7): batched
// in memory, sent at least every FlushInterval by the one goroutine running Run, spooled to
// disk while Django cannot take them and replayed from there in order, oldest first. Delivery
// is at-least-once (Django drops IDs it has seen); within one queue, events reach Django in
// Emit order. Emit is safe for concurrent use and never waits for Django.
type EventQueue struct {
	client         *Client
	cfg            EventsConfig
	log            *slog.Logger
	rc             *retryablehttp.Client
	attemptTimeout time.Duration
	maxBackoff     time.Duration
	// poisonBudget is how many suspects in a row the next walk may find (poison.go); only
	// the goroutine delivering (Run, then Close) uses it.
	poisonBudget int
	poisonPause  time.Duration // first pause between poison answers to one batch; doubles

	kick     chan struct{}      // a full batch is ready; capacity 1
	stopCtx  context.Context    // done once Close is called: Run's loop ends
	stop     context.CancelFunc // ends stopCtx
	abortCtx context.Context    // done once Close's ctx is: Run's send in progress ends
	abort    context.CancelFunc // ends abortCtx
	done     chan struct{}      // closed when Run returns

	dropped   atomic.Uint64
	poisoned  atomic.Uint64 // of dropped: poison events (poison.go)
	rejected  atomic.Uint64 // events Django rejected for good in a 200
	unlogged  atomic.Uint64 // drops not yet logged (logged in summary by Run and Close)
	delivered atomic.Uint64

	mu  sync.Mutex
	sp  *spool // nil: spooling off
	mem memQueue
	// inflight is the batch Run took from mem and is sending. When an overflow spooled it
	// meanwhile (Emit found mem full), inflightEnds holds each event's spool position so
	// that the outcome of the send is recorded there.
	inflight        [][]byte
	inflightEnds    []spoolPos
	inflightSpooled bool
	running, closed bool
}

// NewEventQueue validates cfg and returns a queue sending through c. With a SpoolDir, it
// opens (or creates) the spool there; events left by an earlier process are sent first, in
// order. It starts no goroutine: the owner calls Run, then Close. A nil log discards.
func (c *Client) NewEventQueue(cfg EventsConfig, log *slog.Logger) (*EventQueue, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.SpoolMaxBytes == 0:
		cfg.SpoolMaxBytes = DefaultSpoolMaxBytes
	case cfg.SpoolMaxBytes < MinSpoolMaxBytes:
		return nil, fmt.Errorf("spool max bytes %d: need at least %d", cfg.SpoolMaxBytes, MinSpoolMaxBytes)
	}
	switch {
	case cfg.FlushInterval == 0:
		cfg.FlushInterval = DefaultFlushInterval
	case cfg.FlushInterval < 0:
		return nil, fmt.Errorf("flush interval %s: must not be negative", cfg.FlushInterval)
	}
	switch {
	case cfg.BatchSize == 0:
		cfg.BatchSize = MaxBatchSize
	case cfg.BatchSize < 0 || cfg.BatchSize > MaxBatchSize:
		return nil, fmt.Errorf("batch size %d: must be between 1 and %d", cfg.BatchSize, MaxBatchSize)
	}
	switch {
	case cfg.QueueSize == 0:
		cfg.QueueSize = DefaultQueueSize
	case cfg.QueueSize < 0:
		return nil, fmt.Errorf("queue size %d: must not be negative", cfg.QueueSize)
	}
	q := &EventQueue{
		client:         c,
		cfg:            cfg,
		log:            log,
		attemptTimeout: c.timeout,
		maxBackoff:     eventsMaxBackoff,
		poisonBudget:   minPoisonBudget,
		poisonPause:    retryWaitMin,
		kick:           make(chan struct{}, 1),
		done:           make(chan struct{}),
	}
	q.stopCtx, q.stop = context.WithCancel(context.Background())
	q.abortCtx, q.abort = context.WithCancel(context.Background())
	q.rc = &retryablehttp.Client{
		HTTPClient:   c.rc.HTTPClient,
		Logger:       debugLogger{log},
		RetryWaitMin: retryWaitMin,
		RetryWaitMax: retryWaitMax,
		RetryMax:     min(c.rc.RetryMax, eventsMaxRetries),
		CheckRetry:   eventsCheckRetry,
		Backoff:      backoff,
		ErrorHandler: keepLastResponse,
		PrepareRetry: c.resignAs(PurposeEvents),
	}
	if cfg.SpoolDir != "" {
		sp, err := openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes, log)
		if err != nil {
			return nil, fmt.Errorf("event spool %q: %w", cfg.SpoolDir, err)
		}
		if n := sp.size(); n > 0 {
			log.Info("event spool holds undelivered events, replaying them first", "spool_bytes", n)
		}
		q.sp = sp
	}
	return q, nil
}

// Emit queues e for delivery and returns at once: it never waits for Django. It fills an
// empty ID (16 random bytes, hex) and a zero Time (now). An event that cannot be sent (an
// unknown type, an ID over 128 bytes, an encoding over the request size) is dropped and
// logged at ERROR: it is a bug in the caller. When the memory queue is full, the queue moves
// to the spool in one write (Emit then waits for the disk, once per QueueSize events); with
// no spool, or if that write fails, the oldest queued event is dropped. Drops are counted
// (Stats) and logged. After Close, events are dropped.
func (q *EventQueue) Emit(e Event) {
	if e.ID == "" {
		e.ID = newEventID()
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	line, err := encodeEvent(&e)
	if err != nil {
		q.dropped.Add(1)
		q.log.Error("event dropped: cannot be sent", "type", e.Type, "session", e.Session, "err", err)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		q.dropLocked(1)
		q.log.Warn("event dropped: queue closed", "type", e.Type, "session", e.Session)
		return
	}
	wasReady := q.mem.ready(q.cfg.BatchSize)
	q.mem.push(line)
	if !wasReady && q.mem.ready(q.cfg.BatchSize) {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
	if q.mem.len() <= q.cfg.QueueSize {
		return
	}
	if q.sp != nil && q.spoolMemoryLocked() == nil {
		return
	}
	over := q.mem.len() - q.cfg.QueueSize
	q.mem.dropFront(over)
	q.dropLocked(over)
}

// dropLocked counts n events lost from memory; Run logs them in a summary.
func (q *EventQueue) dropLocked(n int) {
	q.dropped.Add(uint64(n))
	q.unlogged.Add(uint64(n))
}

// spoolMemoryLocked appends the in-flight batch (unless already spooled) and the memory queue
// to the spool, oldest first, and empties the memory queue. On error memory is unchanged.
func (q *EventQueue) spoolMemoryLocked() error {
	withInflight := q.inflight != nil && !q.inflightSpooled
	lines := make([][]byte, 0, q.mem.len()+len(q.inflight))
	if withInflight {
		lines = append(lines, q.inflight...)
	}
	lines = append(lines, q.mem.lines...)
	if len(lines) == 0 {
		return nil
	}
	ends, dropped, err := q.sp.appendLines(lines)
	q.dropped.Add(uint64(dropped))
	if err != nil {
		q.log.Error("event spool: cannot write, events stay in memory", "events", len(lines), "err", err)
		return err
	}
	if withInflight {
		// ends belong to the last len(ends) lines; a zero position never commits.
		q.inflightSpooled = true
		q.inflightEnds = make([]spoolPos, len(q.inflight))
		skip := len(lines) - len(ends)
		for i := range q.inflight {
			if j := i - skip; j >= 0 {
				q.inflightEnds[i] = ends[j]
			}
		}
	}
	q.mem.reset()
	return nil
}

// Run is the queue's one delivery loop; its owner starts it once. Every FlushInterval, or as
// soon as BatchSize events are queued, it sends what is queued: the spool first while it
// holds anything, then memory. Each send is one short set of attempts (5xx and transport
// failures retried twice within the client's Timeout); a batch that fails goes to the spool
// (or back to memory) and sending resumes after an exponential backoff from FlushInterval up
// to 30 s. A 413 splits the batch; a single event Django finds too large is dropped and
// logged. A batch Django keeps answering 400/422/500 is split to find the events it cannot
// take, which are dropped once it took later ones (poison.go); events a 200 lists as
// rejected are final. Other 4xx answers and unverifiable answers are logged at ERROR and
// retried like outages. Every drop is logged and counted.
//
// Run returns nil when ctx is done or Close is called, once the send in progress (at most one
// short attempt set) has finished and its outcome is recorded; what is still queued is
// Close's to flush. It returns an error if called twice or after Close.
func (q *EventQueue) Run(ctx context.Context) error {
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		return errQueueClosed
	case q.running:
		q.mu.Unlock()
		return errors.New("event queue: Run called twice")
	}
	q.running = true
	q.mu.Unlock()
	defer close(q.done)

	// The loop ends with ctx or Close; a send in progress ends with Close's deadline only,
	// so that an answer on its way is not thrown away (and the batch sent twice).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(q.stopCtx, cancel)()

	timer := time.NewTimer(q.cfg.FlushInterval)
	defer timer.Stop()
	var (
		failures int
		retryAt  time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-q.kick:
		}
		q.logDrops()
		if now := time.Now(); now.Before(retryAt) {
			// Backing off: keep what arrived safe on disk behind the spooled events.
			q.mu.Lock()
			if q.sp != nil && !q.sp.empty() {
				_ = q.spoolMemoryLocked()
			}
			q.mu.Unlock()
			timer.Reset(min(q.cfg.FlushInterval, retryAt.Sub(now)))
			continue
		}
		more, err := q.flushOnce(q.abortCtx)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			failures++
			wait := q.backoff(failures)
			retryAt = time.Now().Add(wait)
			q.logFailure(err, wait)
			timer.Reset(min(q.cfg.FlushInterval, wait))
		case more:
			failures, retryAt = 0, time.Time{}
			timer.Reset(0)
		default:
			failures, retryAt = 0, time.Time{}
			timer.Reset(q.cfg.FlushInterval)
		}
	}
}

func (q *EventQueue) backoff(failures int) time.Duration {
	return min(q.cfg.FlushInterval<<min(failures-1, 20), q.maxBackoff)
}

func (q *EventQueue) logFailure(err error, wait time.Duration) {
	where := "memory"
	if q.sp != nil {
		where = "spool"
	}
	if errors.Is(err, ErrUnavailable) {
		q.log.Warn("events not delivered, kept for retry", "kept_in", where, "retry_in", wait, "err", err)
		return
	}
	q.log.Error("events refused by django: configuration fault (url, secret, versions), kept for retry",
		"kept_in", where, "retry_in", wait, "err", err)
}

func (q *EventQueue) logDrops() {
	if n := q.unlogged.Swap(0); n > 0 {
		q.log.Warn("events dropped: queue full", "events", n, "dropped_total", q.dropped.Load())
	}
}

// flushOnce sends at most one batch and records the outcome. more reports that another
// batch is ready now.
func (q *EventQueue) flushOnce(ctx context.Context) (more bool, err error) {
	q.mu.Lock()
	if q.sp != nil && !q.sp.empty() {
		return q.flushSpoolLocked(ctx)
	}
	n := batchLen(q.mem.lines, q.cfg.BatchSize)
	if n == 0 {
		q.mu.Unlock()
		return false, nil
	}
	batch := q.mem.take(n)
	q.inflight, q.inflightEnds, q.inflightSpooled = batch, nil, false
	q.mu.Unlock()

	k, err := q.deliver(ctx, batch)

	q.mu.Lock()
	defer q.mu.Unlock()
	switch {
	case q.inflightSpooled:
		if k > 0 {
			q.sp.commit(q.inflightEnds[k-1])
		}
	case k < n:
		q.requeueLocked(batch[k:])
	}
	q.inflight, q.inflightEnds, q.inflightSpooled = nil, nil, false
	return q.mem.ready(q.cfg.BatchSize) || (q.sp != nil && !q.sp.empty()), err
}

// flushSpoolLocked sends the oldest spooled batch; memory goes behind it on disk first, so
// order holds. It is called with q.mu held and releases it.
func (q *EventQueue) flushSpoolLocked(ctx context.Context) (bool, error) {
	if q.mem.len() > 0 {
		_ = q.spoolMemoryLocked() // on failure the newer events simply wait in memory
	}
	lines, ends, corrupt, err := q.sp.readLines(q.cfg.BatchSize)
	q.dropped.Add(uint64(corrupt))
	if err != nil {
		q.mu.Unlock()
		return false, fmt.Errorf("events: %w", err)
	}
	n := batchLen(lines, len(lines))
	more := n == 0 && !q.sp.empty()
	q.mu.Unlock()
	if n == 0 {
		return more, nil
	}
	k, err := q.deliver(ctx, lines[:n])
	q.mu.Lock()
	defer q.mu.Unlock()
	if k > 0 {
		q.sp.commit(ends[k-1])
	}
	return !q.sp.empty() || q.mem.ready(q.cfg.BatchSize), err
}

// requeueLocked keeps the undelivered rest of a memory batch, ahead of newer events: in the
// spool (which is empty, or the batch would have been spooled by an overflow), or else in
// memory within QueueSize.
func (q *EventQueue) requeueLocked(rest [][]byte) {
	if q.sp != nil {
		_, dropped, err := q.sp.appendLines(rest)
		q.dropped.Add(uint64(dropped))
		if err == nil {
			return
		}
		q.log.Error("event spool: cannot write, events stay in memory", "events", len(rest), "err", err)
	}
	q.mem.prepend(rest)
	if over := q.mem.len() - q.cfg.QueueSize; over > 0 {
		q.mem.dropFront(over)
		q.dropLocked(over)
	}
}

// post sends one batch, signed, with a short set of attempts, and verifies the answer's
// signature against the attempt it answers. A nil error means a verified 200; the events it
// lists as rejected are returned.
func (q *EventQueue) post(ctx context.Context, lines [][]byte) (int, []rejection, error) {
	body := encodeBody(lines)
	callCtx, cancel := context.WithTimeout(ctx, q.attemptTimeout)
	defer cancel()
	req, err := retryablehttp.NewRequestWithContext(callCtx, http.MethodPost, q.client.eventsURL, body)
	if err != nil {
		return 0, nil, fmt.Errorf("build events request: %w: %w", ErrRejected, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "djftpd")
	q.client.sign(req.Header, PurposeEvents, body)

	start := time.Now()
	resp, err := q.rc.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("events request: %w: %w", ErrUnavailable, err)
	}
	defer drainAndClose(resp.Body)
	answer, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return resp.StatusCode, nil, fmt.Errorf("read events answer: %w: %w", ErrUnavailable, err)
	}
	q.log.Debug("django events answer", "events", len(lines), "status", resp.StatusCode,
		"duration_ms", time.Since(start).Milliseconds())
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		if err := q.client.verifyAnswer(resp, PurposeEvents, answer); err != nil {
			return code, nil, fmt.Errorf("events %w", err)
		}
		rejected, err := parseEventsAnswer(answer)
		return code, rejected, err
	case code >= 500:
		return code, nil, fmt.Errorf("events answer %d (%s): %w", code, errorCode(answer), ErrUnavailable)
	default:
		return code, nil, fmt.Errorf("events answer %d (%s): %w", code, errorCode(answer), ErrRejected)
	}
}

// Close stops Run (waiting for a send in progress to finish, or cancelling it when ctx ends,
// its batch kept), then sends what is queued if Django answers within ctx, and writes the
// rest to the spool. It returns nil when
// every event was delivered or spooled; an error reports events lost (no spool, or the spool
// could not be written). Events emitted after Close are dropped, so close the FTP server
// first. Close is idempotent.
func (q *EventQueue) Close(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	wasRunning := q.running
	q.mu.Unlock()
	q.stop()
	if wasRunning {
		select {
		case <-q.done:
		case <-ctx.Done():
			q.abort() // Run records the aborted batch as undelivered and returns
			<-q.done
		}
	}
	q.abort()
	for ctx.Err() == nil {
		more, err := q.flushOnce(ctx)
		if err != nil {
			q.log.Warn("events: final delivery failed, saving the rest", "err", err)
			break
		}
		q.mu.Lock()
		left := q.mem.len() > 0
		q.mu.Unlock()
		if !more && !left {
			break
		}
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	q.logDrops()
	var err error
	if q.sp != nil {
		err = q.spoolMemoryLocked()
		q.sp.close()
		if err == nil {
			return nil
		}
	}
	lost := q.mem.len()
	if lost == 0 {
		return nil
	}
	q.mem.reset()
	q.dropped.Add(uint64(lost))
	if err != nil {
		q.log.Error("events lost at shutdown: django did not take them and the spool failed", "events", lost)
		return fmt.Errorf("close event queue: %d events lost: %w", lost, err)
	}
	q.log.Warn("events lost at shutdown: django did not take them and there is no spool", "events", lost)
	return fmt.Errorf("close event queue: %d events lost (no spool dir)", lost)
}

// Stats returns a snapshot of the queue's counters.
func (q *EventQueue) Stats() EventStats {
	q.mu.Lock()
	defer q.mu.Unlock()
	s := EventStats{
		Queued:    q.mem.len(),
		Dropped:   q.dropped.Load(),
		Poisoned:  q.poisoned.Load(),
		Rejected:  q.rejected.Load(),
		Delivered: q.delivered.Load(),
	}
	if !q.inflightSpooled {
		s.Queued += len(q.inflight)
	}
	if q.sp != nil {
		s.SpoolBytes = q.sp.size()
	}
	return s
}

// newEventID returns 16 random bytes in hex.
func newEventID() string {
	var b [eventIDRandomSize]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b[:])
}

// knownEventType reports whether t is one of the Event* types of DESIGN.md section 2.
func knownEventType(t string) bool {
	switch t {
	case EventConnect, EventDisconnect, EventLogin, EventLoginFailed, EventLogout,
		EventFileSent, EventFileReceived, EventIncompleteFileSent, EventIncompleteFileReceived,
		EventFileDeleted, EventFileRenamed, EventDirectoryCreated, EventDirectoryDeleted:
		return true
	}
	return false
}

// validEvent checks what Django needs of every event: an ID, a known type and a time.
func validEvent(e *Event) error {
	switch {
	case e.ID == "":
		return errors.New("empty id")
	case len(e.ID) > maxEventIDBytes:
		return fmt.Errorf("id over %d bytes", maxEventIDBytes)
	case !knownEventType(e.Type):
		return fmt.Errorf("unknown event type %q", e.Type)
	case e.Time.IsZero():
		return errors.New("zero time")
	}
	return nil
}

// encodeEvent validates e and returns its JSON and '\n': one spool line, which alone fits in
// a request body.
func encodeEvent(e *Event) ([]byte, error) {
	if err := validEvent(e); err != nil {
		return nil, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	if len(b)+1 > maxLineBytes {
		return nil, fmt.Errorf("encoded event is %d bytes, over %d", len(b), maxLineBytes-1)
	}
	return append(b, '\n'), nil
}

// batchLen returns how many lines from the front make one request: at most limit, and a body
// within MaxBodyBytes. It is at least 1 when lines is not empty.
func batchLen(lines [][]byte, limit int) int {
	size := bodyOverhead - 1 // each line brings its '\n' turned into ',' but the last
	n := 0
	for n < len(lines) && n < limit {
		if size+len(lines[n]) > MaxBodyBytes && n > 0 {
			break
		}
		size += len(lines[n])
		n++
	}
	return n
}

// encodeBody returns {"events":[...]} from lines ending in '\n'.
func encodeBody(lines [][]byte) []byte {
	size := bodyOverhead
	for _, l := range lines {
		size += len(l)
	}
	b := make([]byte, 0, size)
	b = append(b, `{"events":[`...)
	for i, l := range lines {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, l[:len(l)-1]...)
	}
	return append(b, "]}"...)
}

// memQueue is the in-memory FIFO of encoded events (each ending in '\n'), with their size.
type memQueue struct {
	lines [][]byte
	bytes int
}

func (m *memQueue) len() int { return len(m.lines) }

func (m *memQueue) push(l []byte) {
	m.lines = append(m.lines, l)
	m.bytes += len(l)
}

// ready reports whether a full request is waiting: batch events, or a body's worth of bytes.
func (m *memQueue) ready(batch int) bool {
	return len(m.lines) >= batch || m.bytes+bodyOverhead-1 > MaxBodyBytes
}

// take removes and returns the n oldest lines.
func (m *memQueue) take(n int) [][]byte {
	out := m.lines[:n:n]
	m.lines = m.lines[n:]
	for _, l := range out {
		m.bytes -= len(l)
	}
	return out
}

// prepend puts lines back in front of the queue.
func (m *memQueue) prepend(lines [][]byte) {
	m.lines = append(lines[:len(lines):len(lines)], m.lines...)
	for _, l := range lines {
		m.bytes += len(l)
	}
}

func (m *memQueue) dropFront(n int) {
	for _, l := range m.lines[:n] {
		m.bytes -= len(l)
	}
	clear(m.lines[:n])
	m.lines = m.lines[n:]
}

func (m *memQueue) reset() {
	clear(m.lines)
	m.lines = m.lines[:0]
	m.bytes = 0
}
