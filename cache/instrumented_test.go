package cache

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
)

func TestHealthFollowsDjango(t *testing.T) {
	now := time.Now()
	var h Health
	if !h.Healthy(now) {
		t.Fatal("a sidecar that never asked Django is not ready")
	}
	h.Mark(now.Add(-time.Hour))
	h.MarkFailed(now.Add(-time.Minute))
	if h.Healthy(now) {
		t.Fatal("ready although Django failed after its last answer an hour ago")
	}
	h.Mark(now)
	if !h.Healthy(now) {
		t.Fatal("not ready after Django answered")
	}
	h.MarkFailed(now.Add(time.Second))
	if !h.Healthy(now.Add(time.Second)) {
		t.Fatal("one failure right after an answer made it unready")
	}
}

func TestRequestOutcome(t *testing.T) {
	for err, want := range map[error]string{
		nil: "ok", djangoclient.ErrInvalidCredentials: "invalid_credentials",
		djangoclient.ErrRejected: "rejected", djangoclient.ErrBadGrant: "bad_grant",
		djangoclient.ErrUnavailable: "unavailable", errors.New("other"): "unavailable",
	} {
		if err != nil {
			err = fmt.Errorf("wrapped: %w", err)
		}
		if got := requestOutcome(err); got != want {
			t.Errorf("requestOutcome(%v) = %q, want %q", err, got, want)
		}
	}
}
