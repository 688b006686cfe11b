package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// The many-session figures (issue 18 item 5): idle-many holds n logged-in sessions and
// then checks that every one still answers; retr-many runs n downloads at once, one per
// session, and reports the aggregate rate.

// raiseNofile lifts this process's soft RLIMIT_NOFILE to the hard limit (Go's runtime
// does too since 1.19; done here so the check below reads the real value) and refuses a
// run that needs more descriptors than the hard limit allows.
func raiseNofile(need int) (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("setrlimit: %w", err)
		}
	}
	if lim.Cur < uint64(need) {
		return lim.Cur, fmt.Errorf("RLIMIT_NOFILE hard limit %d < %d descriptors needed (ulimit -Hn)", lim.Cur, need)
	}
	return lim.Cur, nil
}

// openSessions logs n sessions in, conc at a time; failed ones are nil in the result.
func openSessions(addr, user, pass string, n, conc int, typeI bool) ([]*client, error) {
	clients := make([]*client, n)
	errs := make([]error, n)
	limited(n, conc, func(i int) {
		var cl *client
		var err error
		if typeI {
			cl, err = session(addr, user, pass, false)
		} else if cl, err = dial(addr); err == nil {
			if err = cl.login(user, pass); err != nil {
				cl.close()
				cl = nil
			}
		}
		clients[i], errs[i] = cl, err
	})
	failed := 0
	var first error
	for i, cl := range clients {
		if cl == nil {
			failed++
			first = firstErr(first, errs[i])
		}
	}
	if failed > 0 {
		return clients, fmt.Errorf("%d of %d sessions failed to log in, first: %w", failed, n, first)
	}
	return clients, nil
}

// limited runs f(0) … f(n-1), conc at a time, and returns when all have.
func limited(n, conc int, f func(i int)) {
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(i)
		})
	}
	wg.Wait()
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func closeAll(clients []*client) {
	for _, cl := range clients {
		if cl != nil {
			_ = cl.send("QUIT")
			cl.close()
		}
	}
}

// runIdleMany opens n logged-in sessions (conc at a time), prints {"ready": n, ...} and
// holds them until stdin closes; then every session sends NOOP, and the result says how
// many answered 200: the sessions that stayed up.
func runIdleMany(addr, user, pass string, n, conc int) (any, error) {
	nofile, err := raiseNofile(n + 64)
	if err != nil {
		return nil, err
	}
	if err := loginOnce(addr, user, pass); err != nil {
		return nil, fmt.Errorf("warm-up login: %w", err)
	}
	start := time.Now()
	clients, openErr := openSessions(addr, user, pass, n, conc, false)
	secs := time.Since(start).Seconds()
	ready := n - countNil(clients)
	line := map[string]any{"ready": ready, "seconds": secs, "nofile": nofile}
	if openErr != nil {
		line["error_open"] = openErr.Error()
	}
	_ = json.NewEncoder(os.Stdout).Encode(line)
	_, _ = io.Copy(io.Discard, os.Stdin)
	held := time.Since(start).Seconds() - secs
	alive, firstDead := noopAll(clients, conc)
	closeAll(clients)
	out := map[string]any{"sessions": n, "ready": ready, "alive": alive, "open_seconds": secs,
		"held_seconds": held, "nofile": nofile}
	if firstDead != nil {
		out["first_dead"] = firstDead.Error()
	}
	return out, nil
}

func countNil(clients []*client) int {
	n := 0
	for _, cl := range clients {
		if cl == nil {
			n++
		}
	}
	return n
}

// noopAll sends NOOP on every open session, conc at a time, and counts the 200s.
func noopAll(clients []*client, conc int) (int, error) {
	var alive atomic.Int64
	var mu sync.Mutex
	var first error
	limited(len(clients), conc, func(i int) {
		if clients[i] == nil {
			return
		}
		if _, err := clients[i].cmd("NOOP", 200); err != nil {
			mu.Lock()
			first = firstErr(first, err)
			mu.Unlock()
			return
		}
		alive.Add(1)
	})
	return int(alive.Load()), first
}

// runRetrMany logs n sessions in (TYPE I), then releases them at once: each sends EPSV,
// connects, RETRs path and reads it to the end and the 226. The figure is every byte
// over the time from the release to the last 226.
func runRetrMany(addr, user, pass, path string, n int) (any, error) {
	if _, err := raiseNofile(2*n + 64); err != nil {
		return nil, err
	}
	clients, err := openSessions(addr, user, pass, n, 20, true)
	defer closeAll(clients)
	if err != nil {
		return nil, err
	}
	got := make([]int64, n)
	each, secs, err := releaseAtOnce(n, func(i int) (err error) {
		got[i], _, err = retrOnce(clients[i], path, make([]byte, 256<<10))
		return err
	})
	if err != nil {
		return nil, err
	}
	var total int64
	for _, b := range got {
		total += b
	}
	return map[string]any{"sessions": n, "bytes": total, "seconds": secs,
		"mbps": float64(total) / 1e6 / secs, "fastest_s": each[0],
		"median_s": each[n/2], "slowest_s": each[n-1]}, nil
}

// releaseAtOnce runs f(0) … f(n-1) in goroutines parked at a gate and opens it, so that
// they start together. It returns each call's seconds (sorted) and the seconds from the
// release to the last return.
func releaseAtOnce(n int, f func(i int) error) ([]float64, float64, error) {
	gate := make(chan struct{})
	each := make([]float64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-gate
			t := time.Now()
			errs[i] = f(i)
			each[i] = time.Since(t).Seconds()
		})
	}
	time.Sleep(50 * time.Millisecond) // every goroutine is parked at the gate
	start := time.Now()
	close(gate)
	wg.Wait()
	secs := time.Since(start).Seconds()
	slices.Sort(each)
	return each, secs, errors.Join(errs...)
}

// retrOnce downloads path on cl through buf: EPSV, connect, RETR, read to EOF, the 226.
// It returns the bytes read and the data connection's TLS suite (empty without TLS).
func retrOnce(cl *client, path string, buf []byte) (int64, string, error) {
	dc, suite, err := cl.transfer("RETR " + path)
	if err != nil {
		return 0, "", err
	}
	var n int64
	for {
		_ = dc.SetReadDeadline(time.Now().Add(opTimeout))
		m, rerr := dc.Read(buf)
		n += int64(m)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			dc.Close()
			return n, suite, fmt.Errorf("data read after %d bytes: %w", n, rerr)
		}
	}
	dc.Close()
	_, _, err = cl.expect(226, 250)
	return n, suite, err
}
