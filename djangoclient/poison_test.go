package djangoclient

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// poisonUser marks the events the Django stand-in cannot store (like a NUL byte on
// PostgreSQL): a batch holding one gets a 500.
const poisonUser = "bad\x01user"

func poisonEvent(i int) Event {
	e := testEvent(i)
	u := poisonUser
	e.Username, e.Type = &u, EventLoginFailed
	return e
}

func hasPoison(b []Event) bool {
	return slices.ContainsFunc(b, func(e Event) bool { return e.Username != nil && *e.Username == poisonUser })
}

// emitWithPoison emits events from..to-1, the ones listed in bad carrying poisonUser.
func emitWithPoison(q *EventQueue, from, to int, bad ...int) {
	for i := from; i < to; i++ {
		if slices.Contains(bad, i) {
			q.Emit(poisonEvent(i))
		} else {
			q.Emit(testEvent(i))
		}
	}
}

// idsWithout is idRange(from, to) less the listed events.
func idsWithout(from, to int, without ...int) []string {
	var ids []string
	for i := from; i < to; i++ {
		if !slices.Contains(without, i) {
			ids = append(ids, fmt.Sprintf("ev-%06d", i))
		}
	}
	return ids
}

// TestEventsPoisonEventDropped: Django answering 500 to every batch holding a poison event
// (and 200 otherwise) gets every other event, in order, and nothing twice; each poison event
// is sent alone poisonAttempts times, then once more after a later event was accepted, and
// then dropped with an ERROR log and counted. Delivery goes on behind them.
func TestEventsPoisonEventDropped(t *testing.T) {
	t.Parallel()
	for _, spool := range []bool{false, true} {
		t.Run(fmt.Sprint("spool=", spool), func(t *testing.T) {
			t.Parallel()
			d, srv := newEventsDjango(t)
			var alone atomic.Int32 // requests holding only event 42
			d.mode = func(_ int, b []Event) int {
				if len(b) == 1 && b[0].ID == "ev-000042" {
					alone.Add(1)
				}
				if hasPoison(b) {
					return http.StatusInternalServerError
				}
				return 200
			}
			var logs syncBuffer
			cfg := EventsConfig{BatchSize: 100}
			if spool {
				cfg.SpoolDir = t.TempDir()
			}
			q := newTestQueue(t, srv, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
			emitWithPoison(q, 0, 100, 42, 43, 77)
			start(t, q)
			waitFor(t, "delivery", func() bool { return q.Stats().Delivered == 97 })
			emitRange(q, 100, 110)
			waitFor(t, "later delivery", func() bool { return q.Stats().Delivered == 107 })
			if got, want := d.received(), idsWithout(0, 110, 42, 43, 77); !slices.Equal(got, want) {
				t.Fatalf("received %v,\nwant %v", got, want)
			}
			if n := alone.Load(); n != poisonAttempts+1 {
				t.Errorf("poison event sent alone %d times, want %d", n, poisonAttempts+1)
			}
			if st := q.Stats(); st.Poisoned != 3 || st.Dropped != 3 || st.Queued != 0 || st.SpoolBytes != 0 {
				t.Errorf("stats %+v, want 3 poison events dropped, nothing left", st)
			}
			for _, id := range []string{"ev-000042", "ev-000043", "ev-000077"} {
				if !logLine(logs.String(), `level=ERROR msg="event dropped: django keeps refusing it`, "id="+id+" type=login_failed") {
					t.Errorf("drop of %s not logged at ERROR with id and type:\n%s", id, logs.String())
				}
			}
		})
	}
}

// TestEventsRejectedNotRetried: events listed in a 200's "rejected" are final: logged at
// ERROR with id, type and Django's reason, counted, never sent again; the rest are delivered.
func TestEventsRejectedNotRetried(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	var sent7 atomic.Int32
	d.mode = func(_ int, b []Event) int {
		if slices.ContainsFunc(b, func(e Event) bool { return e.ID == "ev-000007" }) {
			sent7.Add(1)
		}
		return 200
	}
	d.reject = func(e Event) string {
		if e.ID == "ev-000007" {
			return "username: NUL\x00 not allowed"
		}
		return ""
	}
	var logs syncBuffer
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: t.TempDir()}, slog.New(slog.NewTextHandler(&logs, nil)))
	emitRange(q, 0, 20)
	start(t, q)
	waitFor(t, "delivery", func() bool { return q.Stats().Delivered == 19 })
	emitRange(q, 20, 30)
	waitFor(t, "later delivery", func() bool { return q.Stats().Delivered == 29 })
	if got, want := d.received(), idsWithout(0, 30, 7); !slices.Equal(got, want) {
		t.Fatalf("received %v", got)
	}
	if st, n := q.Stats(), sent7.Load(); st.Rejected != 1 || st.Dropped != 0 || n != 1 {
		t.Fatalf("stats %+v, rejected event sent %d times; want 1 rejected, sent once", st, n)
	}
	if !logLine(logs.String(), `level=ERROR msg="event rejected by django`,
		`id=ev-000007 type=file_received error="username: NUL? not allowed"`) {
		t.Fatalf("rejection not logged at ERROR with id, type and reason:\n%s", logs.String())
	}
}

// TestEventsDjangoDownNeverDrops: while Django is down (port closed, 502/503/504) or
// answers 500 to every batch (its database down), events wait; nothing is dropped, and once
// Django is back every event arrives in order.
func TestEventsDjangoDownNeverDrops(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		status int // 0: port closed
	}{
		{"closed port", 0},
		{"500 to every batch", http.StatusInternalServerError},
		{"400 to every batch", http.StatusBadRequest},
		{"502", http.StatusBadGateway},
		{"503", http.StatusServiceUnavailable},
		{"504", http.StatusGatewayTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := &eventsDjango{t: t}
			srv := httptest.NewUnstartedServer(d)
			t.Cleanup(srv.Close)
			addr := srv.Listener.Addr().String()
			if tt.status == 0 {
				srv.Listener.Close()
			} else {
				d.mode = func(int, []Event) int { return tt.status }
				srv.Start()
			}
			at := &httptest.Server{URL: "http://" + addr} // only its URL: srv may not be started yet
			q := newTestQueue(t, at, EventsConfig{SpoolDir: t.TempDir(), BatchSize: 50}, nil)
			emitRange(q, 0, 120)
			start(t, q)
			time.Sleep(1500 * time.Millisecond) // many rounds at the test's 50 ms backoff
			if st := q.Stats(); st.Dropped != 0 || st.Delivered != 0 {
				t.Fatalf("during the outage: %+v", st)
			}
			if tt.status == 0 {
				l, err := net.Listen("tcp", addr)
				if err != nil {
					t.Skipf("cannot listen on %s again: %v", addr, err)
				}
				srv.Listener = l
				srv.Start()
			} else {
				d.setMode(nil)
			}
			waitFor(t, "delivery", func() bool { return q.Stats().Delivered >= 120 })
			if st := q.Stats(); st.Dropped != 0 || st.Poisoned != 0 {
				t.Fatalf("after the outage: %+v", st)
			}
			// Every event arrives. (Order is not checked: Django recovering in the middle of a
			// walk may take a refused event after later ones, see deliver.)
			got := firstSeen(d.received())
			slices.Sort(got)
			if !slices.Equal(got, idRange(0, 120)) {
				t.Fatalf("received %v", got)
			}
		})
	}
}

// firstSeen keeps the first arrival of each id.
func firstSeen(ids []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// FuzzEventsAnswer: the parser of Django's events answer never panics and refuses only with
// ErrRejected.
func FuzzEventsAnswer(f *testing.F) {
	f.Add([]byte(`{"accepted": 3}`))
	f.Add([]byte(`{"accepted": 2, "rejected": [{"id": "ev-1", "error": "bad username"}]}`))
	f.Add([]byte(`{"accepted": 2, "rejected": null}`))
	f.Add([]byte(`{"accepted": -1}`))
	f.Add([]byte(`{"accepted": 1, "rejected": [1]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := parseEventsAnswer(body)
		if err != nil && !errors.Is(err, ErrRejected) {
			t.Fatalf("error %v does not wrap ErrRejected", err)
		}
	})
}

// logLine reports whether one line of logs holds every part.
func logLine(logs string, parts ...string) bool {
	for _, l := range strings.Split(logs, "\n") {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) }) {
			return true
		}
	}
	return false
}

// TestEventsLongPoisonRun: a run of poison events longer than the first walk's budget is got
// through in a few walks (the budget doubles), and the events behind it arrive in order.
func TestEventsLongPoisonRun(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	d.mode = func(_ int, b []Event) int {
		if hasPoison(b) {
			return http.StatusInternalServerError
		}
		return 200
	}
	q := newTestQueue(t, srv, EventsConfig{SpoolDir: t.TempDir()}, nil)
	bad := make([]int, 0, 12) // more than minPoisonBudget
	for i := 10; i < 22; i++ {
		bad = append(bad, i)
	}
	emitWithPoison(q, 0, 40, bad...)
	start(t, q)
	waitFor(t, "delivery", func() bool { st := q.Stats(); return st.Delivered == 28 && st.Poisoned == 12 })
	if got, want := d.received(), idsWithout(0, 40, bad...); !slices.Equal(got, want) {
		t.Fatalf("received %v", got)
	}
}

// TestDeliverBudget: against a Django answering 500 to everything, one walk stops after
// poisonBudget suspects with nothing dropped, and the budget doubles per walk up to its cap.
func TestDeliverBudget(t *testing.T) {
	t.Parallel()
	d, srv := newEventsDjango(t)
	d.mode = func(int, []Event) int { return http.StatusInternalServerError }
	q := newTestQueue(t, srv, EventsConfig{}, nil)
	lines := make([][]byte, 200)
	for i := range lines {
		e := testEvent(i)
		e.Time = time.Now()
		l, err := encodeEvent(&e)
		if err != nil {
			t.Fatal(err)
		}
		lines[i] = l
	}
	for _, budget := range []int{8, 16, 32, 64, 128, 128} {
		d.mu.Lock()
		before := d.reqs
		d.mu.Unlock()
		if q.poisonBudget != budget {
			t.Fatalf("budget %d, want %d", q.poisonBudget, budget)
		}
		k, err := q.deliver(t.Context(), lines)
		if k != 0 || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("deliver = %d, %v", k, err)
		}
		d.mu.Lock()
		reqs := d.reqs - before
		d.mu.Unlock()
		// Each unit gets poisonAttempts: the path down to the first suspect, then at most two
		// units per further suspect.
		if limit := poisonAttempts * (9 + 2*budget); reqs > limit {
			t.Fatalf("budget %d: %d requests, want at most %d", budget, reqs, limit)
		}
	}
	if st := q.Stats(); st.Dropped != 0 || st.Delivered != 0 {
		t.Fatalf("stats %+v", st)
	}
}
