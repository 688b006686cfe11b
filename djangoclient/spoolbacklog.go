package djangoclient

import (
	"fmt"
	"log/slog"
	"sync"
)

// spoolBacklog is the backlog with a spool: an event waits in pending (memory) from Emit
// until a group commit appends it to the spool, and in the spool until Django acknowledges
// it; the sender reads the spool only. A durable add waits for the commit that carries its
// event: the first waiter writes everything pending with one fsync while later adds queue
// behind it, and the next waiter writes those (group commit).
type spoolBacklog struct {
	queueSize, batch int
	counters         *eventCounters
	log              *slog.Logger

	mu           sync.Mutex
	committed    *sync.Cond // broadcast when a commit attempt ends
	pending      []pendingLine
	pendingBytes int    // of the lines in pending
	nextSeq      uint64 // seq of the next add
	settled      uint64 // every add below it has been through a commit attempt
	writing      bool   // a commit is on its way to disk
	unread       int    // events committed since the sender last read
	unreadBytes  int    // of those events

	io  sync.Mutex // guards sp and cut; never taken with mu held
	sp  *spool
	cut bool // the last read stopped before the end of the spool
}

// pendingLine is an added event not yet in the spool.
type pendingLine struct {
	seq  uint64
	line []byte
}

func newSpoolBacklog(sp *spool, cfg EventsConfig, c *eventCounters, log *slog.Logger) *spoolBacklog {
	b := &spoolBacklog{queueSize: cfg.QueueSize, batch: cfg.BatchSize, counters: c, log: log, sp: sp}
	b.committed = sync.NewCond(&b.mu)
	return b
}

func (b *spoolBacklog) add(line []byte, durable bool) (ok, ready bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	seq := b.nextSeq
	b.nextSeq++
	wasReady := b.readyLocked()
	b.pending = append(b.pending, pendingLine{seq: seq, line: line})
	b.pendingBytes += len(line)
	ready = !wasReady && b.readyLocked()
	if durable || len(b.pending) > b.queueSize {
		b.waitSettledLocked(seq)
	}
	return true, ready
}

// readyLocked reports that the events added since the sender last read make a full batch.
func (b *spoolBacklog) readyLocked() bool {
	return len(b.pending)+b.unread >= b.batch || b.pendingBytes+b.unreadBytes >= fullBatchBytes
}

// waitSettledLocked returns once the add of seq has been through a commit attempt, writing
// itself when no commit is under way.
func (b *spoolBacklog) waitSettledLocked(seq uint64) {
	for b.settled <= seq {
		if b.writing {
			b.committed.Wait()
			continue
		}
		_ = b.commitLocked()
	}
}

// commitLocked writes everything pending to the spool with one fsync. Called with b.mu
// held, it lets go of it while the disk works (so that adds queue up for the next commit)
// and holds it again when it returns. What fails to be written stays pending, in front.
func (b *spoolBacklog) commitLocked() error {
	batch, size := b.pending, b.pendingBytes
	if len(batch) == 0 {
		return nil
	}
	b.pending, b.pendingBytes = nil, 0
	b.writing = true
	b.mu.Unlock()
	err := b.write(batch)
	b.mu.Lock()
	b.writing = false
	b.settled = max(b.settled, batch[len(batch)-1].seq+1)
	if err != nil {
		b.pending = append(batch, b.pending...)
		b.pendingBytes += size
		if over := len(b.pending) - b.queueSize; over > 0 {
			for _, p := range b.pending[:over] {
				b.pendingBytes -= len(p.line)
			}
			clear(b.pending[:over])
			b.pending = b.pending[over:]
			b.counters.drop(over)
		}
	} else {
		b.unread += len(batch)
		b.unreadBytes += size
	}
	b.committed.Broadcast()
	return err
}

func (b *spoolBacklog) write(batch []pendingLine) error {
	lines := make([][]byte, len(batch))
	for i, p := range batch {
		lines[i] = p.line
	}
	b.io.Lock()
	defer b.io.Unlock()
	_, dropped, err := b.sp.appendLines(lines)
	b.counters.dropped.Add(uint64(dropped))
	if err != nil {
		b.log.Error("event spool: cannot write, events stay in memory", "events", len(lines), "err", err)
	}
	return err
}

// flush commits what is pending, after the commit under way if any.
func (b *spoolBacklog) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.writing {
		b.committed.Wait()
	}
	return b.commitLocked()
}

func (b *spoolBacklog) read(limit int) ([][]byte, []spoolPos, error) {
	b.mu.Lock()
	b.unread, b.unreadBytes = 0, 0
	b.mu.Unlock()
	b.io.Lock()
	defer b.io.Unlock()
	lines, ends, corrupt, err := b.sp.readLines(limit)
	b.counters.dropped.Add(uint64(corrupt))
	b.cut = len(ends) > 0 && ends[len(ends)-1].less(b.sp.end())
	return lines, ends, err
}

func (b *spoolBacklog) ack(end spoolPos) {
	b.io.Lock()
	defer b.io.Unlock()
	b.sp.commit(end)
}

func (b *spoolBacklog) more() bool {
	b.io.Lock()
	defer b.io.Unlock()
	return !b.sp.empty()
}

// full: the last read was cut short by the batch limits and its rest is still unsent, or
// the events added since make a full batch.
func (b *spoolBacklog) full() bool {
	b.mu.Lock()
	ready := b.readyLocked()
	b.mu.Unlock()
	if ready {
		return true
	}
	b.io.Lock()
	defer b.io.Unlock()
	return b.cut && !b.sp.empty()
}

func (b *spoolBacklog) queued() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.pending)
}

func (b *spoolBacklog) spoolBytes() int64 {
	b.io.Lock()
	defer b.io.Unlock()
	return b.sp.size()
}

// close writes what is pending and releases the tail file; the spool stays valid on disk.
func (b *spoolBacklog) close() error {
	err := b.flush()
	b.io.Lock()
	b.sp.close()
	b.io.Unlock()
	if err == nil {
		return nil
	}
	b.mu.Lock()
	lost := len(b.pending)
	b.pending = nil
	b.mu.Unlock()
	b.counters.dropped.Add(uint64(lost))
	b.log.Error("events lost at shutdown: django did not take them and the spool failed", "events", lost)
	return fmt.Errorf("close event queue: %d events lost: %w", lost, err)
}
