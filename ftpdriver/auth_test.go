package ftpdriver

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
)

// TestPasswordsNeverLogged: at DEBUG, with every command traced, no password appears.
func TestPasswordsNeverLogged(t *testing.T) {
	t.Parallel()
	ts, logs := newTestServerLogs(t, slog.LevelDebug)
	rc := ts.dial(t)
	rc.cmd("USER alice")
	rc.cmd("PASS wrong-Pa55word")
	rc.login("alice", "alice-pw")
	rc.cmd("QUIT")
	time.Sleep(100 * time.Millisecond)
	out := logs.String()
	if !strings.Contains(out, "cmd=PASS") {
		t.Fatalf("PASS not traced at DEBUG:\n%s", out)
	}
	for _, secret := range []string{"wrong-Pa55word", "alice-pw"} {
		if strings.Contains(out, secret) {
			t.Fatalf("a password is in the logs:\n%s", out)
		}
	}
}

func TestLoginWelcomeIsMultiLine(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.cmd("USER alice")
	if err := rc.tp.PrintfLine("PASS alice-pw"); err != nil {
		t.Fatal(err)
	}
	line1, _ := rc.tp.ReadLine()
	line2, _ := rc.tp.ReadLine()
	if line1 != "230-Hello alice" || line2 != "230 Second line" {
		t.Fatalf("welcome = %q, %q", line1, line2)
	}
	if got := ts.auth.calls[0]; got.ClientIP != "127.0.0.1" || got.Protocol != "ftp" || got.Session == "" {
		t.Fatalf("auth request = %+v", got)
	}
}

// TestLoginReplies pins errors.go's login rows (DESIGN.md §2, §8: goftp answers
// every auth error "550 Checking password error").
func TestLoginReplies(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		err       error
		wantCode  int
		wantClose bool
	}{
		{"invalid credentials", djangoclient.ErrInvalidCredentials, 530, false},
		{"django unavailable", djangoclient.ErrUnavailable, 421, true},
		{"secrets differ", djangoclient.ErrRejected, 421, true},
		{"bad grant", djangoclient.ErrBadGrant, 421, true},
		{"unexpected", errors.New("boom"), 421, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			ts.auth.err = fmt.Errorf("wrapped: %w", tt.err)
			rc := ts.dial(t)
			rc.cmd("USER alice")
			if code, msg := rc.cmd("PASS alice-pw"); code != tt.wantCode {
				t.Fatalf("PASS = %d %s, want %d", code, msg, tt.wantCode)
			}
			if got := rc.closed(); got != tt.wantClose {
				t.Fatalf("closed = %v, want %v", got, tt.wantClose)
			}
		})
	}
}

func TestMaxLoginAttemptsCloses(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.MaxLoginAttempts = 2 })
	rc := ts.dial(t)
	for i := range 2 {
		rc.cmd("USER alice")
		if code, _ := rc.cmd("PASS wrong"); code != 530 {
			t.Fatalf("attempt %d: got %d, want 530", i, code)
		}
	}
	if !rc.closed() {
		t.Fatal("connection still open after the last allowed attempt")
	}
}
