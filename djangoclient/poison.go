package djangoclient

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// How a batch Django keeps refusing is taken apart, so that one event Django cannot store
// does not hold every later event back (issue 12, item 2). Django's answer to one request of
// a delivery walk falls in one of these classes:
//
//   - a signed 200: delivered. Events its "rejected" list names are final: logged at ERROR,
//     counted, never sent again;
//   - 400, 422 or 500 (poisonStatus), an answer about this batch's content: after
//     poisonAttempts of them the batch is split in halves, sent in order; an event refused
//     alone poisonAttempts times is a suspect;
//   - 413: split likewise; an event refused alone is dropped (it can never fit);
//   - anything else (refused connection, timeout, 502/503/504, 403, 404, an answer that does
//     not verify): Django is down or misconfigured. The walk stops; the rest waits in the
//     spool and is retried after a backoff. Nothing is ever dropped for it.
//
// A suspect is dropped only when Django took a later event of the same walk and then refused
// the suspect once more, alone. So a Django that refuses every batch (its database down) loses
// nothing: the walk finds suspects and no later event taken, and stops after poisonBudget of
// them. The price is order in one race: Django recovering while a walk passes a suspect takes
// the suspect after the later events (at-least-once holds; Django orders by each event's time).

const (
	// poisonAttempts is how many answers of a poison status one batch (or one event) gets
	// before it is split (or suspected).
	poisonAttempts = 3
	// minPoisonBudget and maxPoisonBudget bound how many suspects in a row one walk finds
	// before it stops for want of a later event Django takes. The budget doubles after each
	// walk that stopped so, and is back to the minimum after a walk delivered something: a
	// run of poison events longer than the budget is still got through in a few walks, and
	// a Django that refuses everything costs few requests per backoff.
	minPoisonBudget = 8
	maxPoisonBudget = 128
	// maxReasonBytes bounds Django's reason for a rejection in the log.
	maxReasonBytes = 200
)

// poisonStatus reports whether an answer to an events batch is about the batch's content
// rather than Django's state: 400 (Django cannot take the batch), 422, 500 (an error inside
// the view, such as a value the database refuses).
func poisonStatus(code int) bool {
	return code == http.StatusBadRequest || code == http.StatusUnprocessableEntity ||
		code == http.StatusInternalServerError
}

// fate is what became of one event of a walk.
type fate uint8

const (
	fateDelivered fate = iota
	fateDropped        // refused alone as too large (413): dropped, counted
	fateSuspect        // refused alone poisonAttempts times with a poison status
)

// walk is one delivery of a batch: the fate of each event sent, from the front, and the
// failure that stopped it.
type walk struct {
	fates       []fate
	unconfirmed int  // suspects since the last delivered event
	budget      int  // unconfirmed suspects that stop the walk
	status      int  // the last poison status, for messages
	logged      bool // the walk's first split was logged
	err         error
}

func (w *walk) add(f fate, n int) {
	for range n {
		w.fates = append(w.fates, f)
	}
	switch f {
	case fateDelivered:
		w.unconfirmed = 0
	case fateSuspect:
		w.unconfirmed += n
	}
}

// deliver sends lines and returns how many of them, from the front, are done with:
// acknowledged, rejected for good, or dropped (too large, or poison).
func (q *EventQueue) deliver(ctx context.Context, lines [][]byte) (int, error) {
	w := walk{budget: q.poisonBudget}
	q.send(ctx, lines, &w)
	k, err := q.settle(ctx, lines, &w)
	switch {
	case k > 0 && ctx.Err() == nil:
		q.poisonBudget = minPoisonBudget
	case w.unconfirmed >= w.budget:
		q.poisonBudget = min(2*w.budget, maxPoisonBudget)
	}
	return k, err
}

// send delivers lines in order, splitting them as the answers say, and records each event's
// fate in w until something other than the batch's content stops it.
func (q *EventQueue) send(ctx context.Context, lines [][]byte, w *walk) {
	if w.err != nil {
		return
	}
	if w.unconfirmed >= w.budget {
		w.err = fmt.Errorf("events answer %d to %d events sent alone and no later event taken: %w",
			w.status, w.unconfirmed, ErrUnavailable)
		return
	}
	status, err := q.postAttempts(ctx, lines)
	switch {
	case err == nil:
		w.add(fateDelivered, len(lines))
	case status == http.StatusRequestEntityTooLarge && len(lines) == 1:
		q.dropped.Add(1)
		q.log.Error("event dropped: django refuses it as too large (413)", "bytes", len(lines[0]))
		w.add(fateDropped, 1)
	case poisonStatus(status) && len(lines) == 1 && ctx.Err() == nil:
		w.status = status
		w.add(fateSuspect, 1)
	case status == http.StatusRequestEntityTooLarge || (poisonStatus(status) && ctx.Err() == nil):
		if status != http.StatusRequestEntityTooLarge {
			w.status = status
			if !w.logged { // once per walk: a Django refusing everything would flood the log
				w.logged = true
				q.log.Error("django keeps refusing an events batch (a bug, or a value it cannot store), splitting it",
					"events", len(lines), "err", err)
			}
		}
		h := len(lines) / 2
		q.send(ctx, lines[:h], w)
		q.send(ctx, lines[h:], w)
	default:
		w.err = err
	}
}

// postAttempts posts lines up to poisonAttempts times while Django answers a poison status,
// pausing briefly between attempts.
func (q *EventQueue) postAttempts(ctx context.Context, lines [][]byte) (int, error) {
	for attempt := 1; ; attempt++ {
		status, err := q.postOnce(ctx, lines)
		if err == nil || !poisonStatus(status) || attempt == poisonAttempts {
			return status, err
		}
		t := time.NewTimer(q.poisonPause << (attempt - 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return status, err
		case <-t.C:
		}
	}
}

// postOnce posts lines once; on a verified 200 it counts them as delivered, less the
// events Django rejected for good, which it logs.
func (q *EventQueue) postOnce(ctx context.Context, lines [][]byte) (int, error) {
	status, rejected, err := q.post(ctx, lines)
	if err == nil {
		n := q.applyRejections(lines, rejected)
		q.delivered.Add(uint64(len(lines) - n))
	}
	return status, err
}

// settle drops the suspects a later delivery confirmed as poison, once Django refused them
// again, and returns how many lines from the front are done with.
func (q *EventQueue) settle(ctx context.Context, lines [][]byte, w *walk) (int, error) {
	last := -1
	for i, f := range w.fates {
		if f == fateDelivered {
			last = i
		}
	}
	for i := 0; i < last; i++ {
		if w.fates[i] != fateSuspect {
			continue
		}
		if err := q.confirmPoison(ctx, lines[i]); err != nil {
			return i, err // the events after i that were delivered are sent again later
		}
	}
	k := last + 1
	for k < len(w.fates) && w.fates[k] == fateDropped {
		k++
	}
	if k == len(lines) {
		return k, nil
	}
	if w.err == nil { // only suspects are left, with no later event taken
		w.err = fmt.Errorf("events answer %d to %d events sent alone and no later event taken: %w",
			w.status, len(w.fates)-k, ErrUnavailable)
	}
	return k, w.err
}

// confirmPoison sends a suspect once more, now that Django took later events: delivered
// (Django had recovered), or dropped with an ERROR log when refused again. Other failures
// (Django down again) are returned and the suspect kept.
func (q *EventQueue) confirmPoison(ctx context.Context, line []byte) error {
	id, typ := eventIDType(line)
	status, err := q.postOnce(ctx, [][]byte{line})
	switch {
	case err == nil:
		q.log.Warn("event delivered after later ones: django refused it, then took it", "id", id, "type", typ)
		return nil
	case poisonStatus(status) && ctx.Err() == nil:
		q.dropped.Add(1)
		q.poisoned.Add(1)
		q.log.Error("event dropped: django keeps refusing it while taking later events (poison)",
			"id", id, "type", typ, "attempts", poisonAttempts+1, "err", err)
		return nil
	}
	return err
}

// applyRejections logs at ERROR and counts the events of lines that Django rejected for
// good, and returns how many of lines they are. Ids that are not in lines are ignored.
func (q *EventQueue) applyRejections(lines [][]byte, rejected []rejection) int {
	if len(rejected) == 0 {
		return 0
	}
	why := make(map[string]string, len(rejected))
	for _, r := range rejected {
		why[r.ID] = r.Error
	}
	n := 0
	for _, l := range lines {
		id, typ := eventIDType(l)
		reason, ok := why[id]
		if !ok {
			continue
		}
		delete(why, id) // an id sent twice in one batch counts once
		n++
		q.log.Error("event rejected by django, not sent again", "id", id, "type", typ,
			"error", printable(reason, maxReasonBytes))
	}
	q.rejected.Add(uint64(n))
	return n
}

// eventIDType returns the id and type of an encoded event ("" for a line that does not
// decode, which encodeEvent never writes).
func eventIDType(line []byte) (id, typ string) {
	var e struct {
		ID   string `json:"id"`
		Type string `json:"type"`
	}
	_ = json.Unmarshal(line, &e)
	return e.ID, e.Type
}

// printable returns s cut to at most n bytes with every byte outside printable ASCII
// replaced by '?': Django's text goes into a log line.
func printable(s string, n int) string {
	if len(s) > n {
		s = s[:n]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// rejection is one entry of the events answer's "rejected" list: an event Django will never
// take (it said why), so it is not sent again.
type rejection struct {
	ID    string `json:"id"`
	Error string `json:"error"`
}

// parseEventsAnswer decodes a verified 200 answer of the events endpoint:
// {"accepted": n, "rejected": [{"id": str, "error": str}, ...]}, "rejected" optional (older
// Django apps send none). A malformed answer wraps ErrRejected.
func parseEventsAnswer(body []byte) ([]rejection, error) {
	var a struct {
		Accepted *int        `json:"accepted"`
		Rejected []rejection `json:"rejected"`
	}
	if err := json.Unmarshal(body, &a); err != nil || a.Accepted == nil || *a.Accepted < 0 {
		return nil, fmt.Errorf("events answer 200 without a valid \"accepted\" and \"rejected\": %w", ErrRejected)
	}
	return a.Rejected, nil
}

// eventsCheckRetry is checkRetry, except that a poison status is not retried inside one
// post: postAttempts counts those attempts itself.
func eventsCheckRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if err == nil && resp != nil && poisonStatus(resp.StatusCode) {
		return false, nil
	}
	return checkRetry(ctx, resp, err)
}
