package acceptretry

import (
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestTemporary(t *testing.T) {
	t.Parallel()
	opErr := func(err error) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", err)}
	}
	tests := []struct {
		err  error
		want bool
	}{
		{opErr(syscall.EMFILE), true},
		{opErr(syscall.ENFILE), true},
		{opErr(syscall.ENOBUFS), true},
		{opErr(syscall.ENOMEM), true},
		{opErr(syscall.ECONNABORTED), true},
		{fmt.Errorf("wrapped: %w", opErr(syscall.EMFILE)), true},
		{opErr(syscall.EAGAIN), true}, // a timeout
		{opErr(net.ErrClosed), false},
		{net.ErrClosed, false},
		{opErr(syscall.EBADF), false},
		{opErr(syscall.EINVAL), false},
		{errors.New("other"), false},
		{nil, false},
	}
	for _, tt := range tests {
		if got := Temporary(tt.err); got != tt.want {
			t.Errorf("Temporary(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestNextAndMaxAccepts(t *testing.T) {
	t.Parallel()
	var got []time.Duration
	for d, i := time.Duration(0), 0; i < 10; i++ {
		d = Next(d)
		got = append(got, d)
	}
	want := []time.Duration{5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("delays = %v, want 5 ms doubling to 1 s", got)
		}
	}
	for _, tt := range []struct {
		elapsed time.Duration
		want    int
	}{{0, 1}, {4 * time.Millisecond, 1}, {5 * time.Millisecond, 2}, {15 * time.Millisecond, 3}, {3275 * time.Millisecond, 11}} {
		if got := MaxAccepts(tt.elapsed); got != tt.want {
			t.Errorf("MaxAccepts(%v) = %d, want %d", tt.elapsed, got, tt.want)
		}
	}
}

// TestWaitEndsOnDone: closing the listener ends a wait at once, with false.
func TestWaitEndsOnDone(t *testing.T) {
	t.Parallel()
	done := make(chan struct{})
	close(done)
	b := &Backoff{Done: done, delay: MaxDelay}
	if b.Wait(syscall.EMFILE) {
		t.Fatal("Wait after Done = true")
	}
	if (&Backoff{}).Wait(net.ErrClosed) {
		t.Fatal("Wait(net.ErrClosed) = true")
	}
}
