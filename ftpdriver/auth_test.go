package ftpdriver

import (
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestPasswordsNeverLogged: at DEBUG, with every command traced, no password appears.
func TestPasswordsNeverLogged(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ts := newTestServerLog(t, log)
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
