package djangoclient

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
)

// backlog holds every event from Emit until Django acknowledges it. The sender reads the
// oldest events without removing them and acknowledges them by the position after the last
// one Django took; what it does not acknowledge is read again.
type backlog interface {
	// add appends an encoded event; durable asks for it to be on disk before add returns
	// (where there is a disk). ok is false after close; ready reports that a full batch
	// has just become ready.
	add(line []byte, durable bool) (ok, ready bool)
	// flush moves what waits in memory to disk (no-op without a spool).
	flush() error
	// read returns up to limit of the oldest events, within one request body, and the
	// position after each.
	read(limit int) (lines [][]byte, ends []spoolPos, err error)
	// ack removes every event up to position end.
	ack(end spoolPos)
	// more reports that events wait to be sent (Close sends until none do).
	more() bool
	// full reports that a full batch waits: BatchSize events, or a request body's worth.
	full() bool
	// queued is the number of events held in memory only.
	queued() int
	spoolBytes() int64
	// close flushes, releases files, and reports the events it could not keep.
	close() error
}

// memBacklog is the backlog without a spool: a bounded FIFO in memory, lost on exit.
type memBacklog struct {
	queueSize, batch int
	counters         *eventCounters
	log              *slog.Logger

	mu      sync.Mutex
	q       memQueue
	reading int // the oldest events handed to the sender and not yet acknowledged
}

func newMemBacklog(cfg EventsConfig, c *eventCounters, log *slog.Logger) *memBacklog {
	return &memBacklog{queueSize: cfg.QueueSize, batch: cfg.BatchSize, counters: c, log: log}
}

// add drops the oldest events beyond queueSize, but never those the sender is sending.
func (m *memBacklog) add(line []byte, _ bool) (ok, ready bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	wasReady := m.q.ready(m.batch)
	m.q.push(line)
	if over := m.q.len() - m.reading - m.queueSize; over > 0 {
		m.q.dropAt(m.reading, over)
		m.counters.drop(over)
	}
	return true, !wasReady && m.q.ready(m.batch)
}

func (m *memBacklog) flush() error { return nil }

func (m *memBacklog) read(limit int) ([][]byte, []spoolPos, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := batchLen(m.q.lines, limit)
	m.reading = n
	ends := make([]spoolPos, n)
	for i := range ends {
		ends[i] = spoolPos{off: int64(i + 1)}
	}
	return slices.Clone(m.q.lines[:n]), ends, nil
}

// ack takes end.off events off the front: they are the front of the last read, which no
// drop touched.
func (m *memBacklog) ack(end spoolPos) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.q.dropAt(0, min(int(end.off), m.reading))
	m.reading = 0
}

// more is full: Close's loop ends with queued() (every event is in memory).
func (m *memBacklog) more() bool { return m.full() }

func (m *memBacklog) full() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.q.ready(m.batch)
}

func (m *memBacklog) queued() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.q.len()
}

func (m *memBacklog) spoolBytes() int64 { return 0 }

func (m *memBacklog) close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	lost := m.q.len()
	if lost == 0 {
		return nil
	}
	m.q.reset()
	m.counters.dropped.Add(uint64(lost))
	m.log.Warn("events lost at shutdown: django did not take them and there is no spool", "events", lost)
	return fmt.Errorf("close event queue: %d events lost (no spool dir)", lost)
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

// dropAt removes n lines from index i on.
func (m *memQueue) dropAt(i, n int) {
	if n <= 0 {
		return
	}
	for _, l := range m.lines[i : i+n] {
		m.bytes -= len(l)
	}
	if i == 0 {
		clear(m.lines[:n])
		m.lines = m.lines[n:]
		return
	}
	m.lines = slices.Delete(m.lines, i, i+n)
}

func (m *memQueue) reset() {
	clear(m.lines)
	m.lines = m.lines[:0]
	m.bytes = 0
}
