package loglimit

import (
	"testing"
	"time"
)

func TestLogLimiter(t *testing.T) {
	l := &Limiter{Interval: 10 * time.Second}
	t0 := time.Unix(1_700_000_000, 0)
	steps := []struct {
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{0, true, 0},
		{time.Second, false, 0},
		{9 * time.Second, false, 0},
		{10 * time.Second, true, 2},
		{11 * time.Second, false, 0},
		{time.Minute, true, 1},
		{2 * time.Minute, true, 0},
	}
	for i, s := range steps {
		ok, n := l.Allow(t0.Add(s.at))
		if ok != s.ok || n != s.suppressed {
			t.Fatalf("step %d at +%v: Allow = %v, %d; want %v, %d", i, s.at, ok, n, s.ok, s.suppressed)
		}
	}
}

// TestLimiterOneSecond: the PROXY trust rule's warnings, one a second.
func TestLimiterOneSecond(t *testing.T) {
	t.Parallel()
	w := &Limiter{Interval: time.Second}
	t0 := time.Now()
	steps := []struct {
		at             time.Duration
		ok             bool
		wantSuppressed int
	}{
		{0, true, 0},
		{100 * time.Millisecond, false, 0},
		{900 * time.Millisecond, false, 0},
		{time.Second, true, 2},
		{1500 * time.Millisecond, false, 0},
		{3 * time.Second, true, 1},
	}
	for _, st := range steps {
		ok, n := w.Allow(t0.Add(st.at))
		if ok != st.ok || n != st.wantSuppressed {
			t.Fatalf("at %v: Allow = %v, %d; want %v, %d", st.at, ok, n, st.ok, st.wantSuppressed)
		}
	}
}
