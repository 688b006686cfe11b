package djangoclient

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
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
	eventLineCap      = 320 // a login's events are ~250 bytes: one allocation each
)

// EventsConfig configures an EventQueue. Build it as a literal; NewEventQueue validates it.
type EventsConfig struct {
	// SpoolDir is the event log on disk (created 0700): every event goes through it, from
	// Emit until Django acknowledges it, and durable events are fsync'd there before Emit
	// returns. Empty turns it off: events then wait in memory only (nothing survives a crash
	// or a restart), and the oldest are dropped once QueueSize is reached.
	SpoolDir string
	// SpoolMaxBytes bounds the disk usage of the spool; when it is full the oldest events
	// are dropped. Zero means DefaultSpoolMaxBytes; otherwise at least MinSpoolMaxBytes.
	SpoolMaxBytes int64
	// FlushInterval is how often queued events are sent; zero means DefaultFlushInterval.
	FlushInterval time.Duration
	// BatchSize is the most events per request and the queue length that triggers a send
	// before the interval (as does a request body's worth of events); zero means
	// MaxBatchSize, which is also the maximum. A batch is also cut so that its body stays
	// within MaxBodyBytes. While full batches wait they are sent back to back; a smaller
	// rest waits for the interval.
	BatchSize int
	// QueueSize bounds the events held in memory; zero means DefaultQueueSize. When it is
	// reached, they are written to the spool (or, without one, the oldest event is dropped).
	QueueSize int
}

// EventStats is a snapshot of an EventQueue's counters, for metrics.
type EventStats struct {
	Queued     int    // events held in memory only: not yet in the spool (or, without one, not yet delivered)
	SpoolBytes int64  // disk usage of the spool's segment files
	TornBytes  int64  // bytes of torn or corrupt segment tails cut off when the spool was opened
	Dropped    uint64 // events lost: spool or memory bound, corrupt spool records, invalid events, poison
	Poisoned   uint64 // of Dropped: events Django kept refusing (400/422/500) while taking others
	Rejected   uint64 // events Django's signed 200 listed as rejected for good (not in Delivered)
	Delivered  uint64 // events Django acknowledged with a signed 200
}

// eventCounters are the queue's counters, shared with its backlog.
type eventCounters struct {
	dropped   atomic.Uint64
	poisoned  atomic.Uint64 // of dropped: poison events (poison.go)
	rejected  atomic.Uint64 // events Django rejected for good in a 200
	unlogged  atomic.Uint64 // drops not yet logged (logged in summary by Run and Close)
	delivered atomic.Uint64
}

// drop counts n events lost to a bound; Run logs them in a summary.
func (c *eventCounters) drop(n int) {
	c.dropped.Add(uint64(n))
	c.unlogged.Add(uint64(n))
}

// EventQueue delivers events to POST {BaseURL}events/ (DESIGN.md sections 2 and 7) in Emit
// order, oldest first, batched, at least every FlushInterval, by the one goroutine running Run
// (sender.go). Every event lives in the backlog from Emit until Django acknowledges it: with
// a SpoolDir that is the spool on disk (spoolbacklog.go), so a crash loses no event Emit
// returned from for a durable type; without one it is memory (membacklog.go). Delivery is
// at-least-once (Django drops IDs it has seen). Emit is safe for concurrent use and never
// waits for Django.
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

	eventCounters
	backlog   backlog
	tornBytes int64
	closing   atomic.Bool // Close was called: Emit drops

	mu              sync.Mutex // guards running and closed
	running, closed bool
}

// NewEventQueue validates cfg and returns a queue sending through c. With a SpoolDir, it
// opens (or creates) the spool there, cutting off a record torn by a crash; events left by
// an earlier process are sent first, in order. It starts no goroutine: the owner calls Run,
// then Close. A nil log discards.
func (c *Client) NewEventQueue(cfg EventsConfig, log *slog.Logger) (*EventQueue, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
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
	if cfg.SpoolDir == "" {
		q.backlog = newMemBacklog(cfg, &q.eventCounters, log)
		return q, nil
	}
	sp, err := openSpool(cfg.SpoolDir, cfg.SpoolMaxBytes, log)
	if err != nil {
		return nil, fmt.Errorf("event spool %q: %w", cfg.SpoolDir, err)
	}
	if n := sp.size(); n > 0 {
		log.Info("event spool holds undelivered events, replaying them first", "spool_bytes", n)
	}
	q.tornBytes = sp.tornBytes
	q.dropped.Add(uint64(sp.corruptAtOpen))
	q.backlog = newSpoolBacklog(sp, cfg, &q.eventCounters, log)
	return q, nil
}

// withDefaults validates cfg and fills its zero fields.
func (cfg EventsConfig) withDefaults() (EventsConfig, error) {
	switch {
	case cfg.SpoolMaxBytes == 0:
		cfg.SpoolMaxBytes = DefaultSpoolMaxBytes
	case cfg.SpoolMaxBytes < MinSpoolMaxBytes:
		return cfg, fmt.Errorf("spool max bytes %d: need at least %d", cfg.SpoolMaxBytes, MinSpoolMaxBytes)
	}
	switch {
	case cfg.FlushInterval == 0:
		cfg.FlushInterval = DefaultFlushInterval
	case cfg.FlushInterval < 0:
		return cfg, fmt.Errorf("flush interval %s: must not be negative", cfg.FlushInterval)
	}
	switch {
	case cfg.BatchSize == 0:
		cfg.BatchSize = MaxBatchSize
	case cfg.BatchSize < 0 || cfg.BatchSize > MaxBatchSize:
		return cfg, fmt.Errorf("batch size %d: must be between 1 and %d", cfg.BatchSize, MaxBatchSize)
	}
	switch {
	case cfg.QueueSize == 0:
		cfg.QueueSize = DefaultQueueSize
	case cfg.QueueSize < 0:
		return cfg, fmt.Errorf("queue size %d: must not be negative", cfg.QueueSize)
	}
	return cfg, nil
}

// Emit queues e for delivery; it never waits for Django. It fills an empty ID (16 random
// bytes, hex) and a zero Time (now).
//
// With a spool, an event of a durable type (DurableType: the completed work a final reply
// such as 226, 250 or 257 reports) is appended to the spool and fsync'd before Emit returns,
// so a caller that emits before replying never acknowledges work a crash can lose. Emits
// that arrive while an fsync runs share the next one (group commit). If the spool cannot be
// written, the event waits in memory, is logged at ERROR, and Emit returns anyway. Other
// events are written by the next group commit or by Run within FlushInterval; Emit waits for
// the disk for them only once QueueSize of them wait. Without a spool nothing waits for the
// disk and nothing survives a crash.
//
// An event that cannot be sent (an unknown type, an ID over 128 bytes, an encoding over the
// request size) is dropped and logged at ERROR: it is a bug in the caller. When a bound is
// reached the oldest events are dropped; drops are counted (Stats) and logged. After Close,
// events are dropped.
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
	ok, ready := false, false
	if !q.closing.Load() {
		ok, ready = q.backlog.add(line, DurableType(e.Type))
	}
	if !ok {
		q.dropped.Add(1)
		q.log.Warn("event dropped: queue closed", "type", e.Type, "session", e.Session)
		return
	}
	if ready {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
}

// DurableType reports whether events of type t describe completed work that the client is
// told about in a final reply (226, 250, 257); with a spool, Emit returns only once they are
// on disk. Connection-level events (connect, login, login_failed, logout, disconnect) and
// incomplete transfers stay memory-first.
func DurableType(t string) bool {
	switch t {
	case EventFileReceived, EventFileSent, EventFileRenamed, EventFileDeleted,
		EventDirectoryCreated, EventDirectoryDeleted:
		return true
	}
	return false
}

// Stats returns a snapshot of the queue's counters.
func (q *EventQueue) Stats() EventStats {
	return EventStats{
		Queued:     q.backlog.queued(),
		SpoolBytes: q.backlog.spoolBytes(),
		TornBytes:  q.tornBytes,
		Dropped:    q.dropped.Load(),
		Poisoned:   q.poisoned.Load(),
		Rejected:   q.rejected.Load(),
		Delivered:  q.delivered.Load(),
	}
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

// encodeEvent validates e and returns its JSON (appendEvent) and '\n': one spool line, which
// alone fits in a request body.
func encodeEvent(e *Event) ([]byte, error) {
	if err := validEvent(e); err != nil {
		return nil, err
	}
	b, err := appendEvent(make([]byte, 0, eventLineCap), e)
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
