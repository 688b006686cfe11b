package djangoclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// errQueueClosed is returned by Run after Close.
var errQueueClosed = errors.New("event queue closed")

// Run is the queue's one delivery loop; its owner starts it once. Every FlushInterval, or as
// soon as a full batch (BatchSize events or a request body's worth) is queued, it writes
// what waits in memory to the spool and sends the oldest events of the backlog; while full
// batches wait it sends them one after the other. Each send is one short set of attempts (5xx and transport
// failures retried twice within the client's Timeout); a batch that fails stays in the
// backlog and sending resumes after an exponential backoff from FlushInterval up to 30 s. A
// 413 splits the batch; a single event Django finds too large is dropped and logged. A batch
// Django keeps answering 400/422/500 is split to find the events it cannot take, which are
// dropped once it took later ones (poison.go); events a 200 lists as rejected are final.
// Other 4xx answers and unverifiable answers are logged at ERROR and retried like outages.
// Every drop is logged and counted.
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
	q.loop(ctx)
	return nil
}

// loop sends until ctx is done, backing off after failures.
func (q *EventQueue) loop(ctx context.Context) {
	timer := time.NewTimer(q.cfg.FlushInterval)
	defer timer.Stop()
	var (
		failures int
		retryAt  time.Time
	)
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		case <-q.kick:
		}
		q.logDrops()
		if now := time.Now(); now.Before(retryAt) {
			_ = q.backlog.flush() // backing off: keep what arrived safe on disk meanwhile
			timer.Reset(min(q.cfg.FlushInterval, retryAt.Sub(now)))
			continue
		}
		full, err := q.flushOnce(q.abortCtx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			failures++
			wait := q.backoff(failures)
			retryAt = time.Now().Add(wait)
			q.logFailure(err, wait)
			timer.Reset(min(q.cfg.FlushInterval, wait))
		case full:
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
	if q.cfg.SpoolDir != "" {
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

// flushOnce writes what waits in memory to the spool, sends at most one batch of the oldest
// events and acknowledges what Django took. full reports that a full batch (BatchSize events
// or a request body's worth) waits, or that Django took only part of this one: the next
// send is due now. A smaller rest waits for the next tick or kick, so that a busy queue
// sends full batches rather than what arrived during the last round trip: Django's cost per
// request is several times its cost per event.
func (q *EventQueue) flushOnce(ctx context.Context) (full bool, err error) {
	_ = q.backlog.flush() // logged there; what is on disk is sent all the same
	lines, ends, err := q.backlog.read(q.cfg.BatchSize)
	if err != nil {
		return false, fmt.Errorf("events: %w", err)
	}
	k := 0
	if len(lines) > 0 {
		k, err = q.deliver(ctx, lines)
		if k > 0 {
			q.backlog.ack(ends[k-1])
		}
	}
	return k < len(lines) || q.backlog.full(), err
}

// post sends one batch, signed, with a short set of attempts, and verifies the answer's
// signature against the attempt it answers. A nil error means a verified 200; the events it
// lists as rejected are returned.
func (q *EventQueue) post(ctx context.Context, lines [][]byte) (int, []rejection, error) {
	callCtx, cancel := context.WithTimeout(ctx, q.attemptTimeout)
	defer cancel()
	start := time.Now()
	resp, answer, err := q.client.postSigned(callCtx, q.rc, q.client.eventsURL, PurposeEvents, encodeBody(lines))
	switch {
	case errors.Is(err, ErrRejected):
		return 0, nil, err
	case err != nil && resp == nil:
		return 0, nil, fmt.Errorf("events request: %w: %w", ErrUnavailable, err)
	case err != nil:
		return resp.StatusCode, nil, fmt.Errorf("events %w: %w", err, ErrUnavailable)
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
// rest to the spool. It returns nil when every event was delivered or spooled; an error
// reports events lost (no spool, or the spool could not be written). Events emitted after
// Close are dropped, so close the FTP server first. Close is idempotent.
func (q *EventQueue) Close(ctx context.Context) error {
	if !q.closing.CompareAndSwap(false, true) {
		return nil
	}
	q.mu.Lock()
	q.closed = true
	wasRunning := q.running
	q.mu.Unlock()
	q.stop()
	if wasRunning {
		select {
		case <-q.done:
		case <-ctx.Done():
			q.abort() // Run leaves the aborted batch unacknowledged and returns
			<-q.done
		}
	}
	q.abort()
	q.finalDelivery(ctx)
	q.logDrops()
	return q.backlog.close()
}

// finalDelivery sends what is queued while Django takes it and ctx allows.
func (q *EventQueue) finalDelivery(ctx context.Context) {
	for ctx.Err() == nil {
		if _, err := q.flushOnce(ctx); err != nil {
			q.log.Warn("events: final delivery failed, saving the rest", "err", err)
			return
		}
		if !q.backlog.more() && q.backlog.queued() == 0 {
			return
		}
	}
}
