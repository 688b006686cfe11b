package ftpdriver

import (
	"log/slog"
	"strings"
	"testing"
)

// TestLibLoggerPanics: goftp's recovered handler panic is an error in djftpd's log;
// its other lines are debug detail.
func TestLibLoggerPanics(t *testing.T) {
	t.Parallel()
	var buf lockedBuffer
	l := libLogger{log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Printf("sess", "handler crashed with error: %v", "boom")
	l.Print("sess", "connection closed")
	out := buf.String()
	if !strings.Contains(out, `level=ERROR msg="command handler panicked"`) || !strings.Contains(out, "boom") {
		t.Errorf("panic line not logged as an error:\n%s", out)
	}
	if !strings.Contains(out, `level=DEBUG msg=goftp detail="connection closed"`) {
		t.Errorf("other goftp line not at debug:\n%s", out)
	}
}

// TestLibLoggerQuiet: above DEBUG goftp's chatter is dropped before any formatting,
// its panic report still logged.
func TestLibLoggerQuiet(t *testing.T) {
	var buf lockedBuffer
	l := libLogger{log: slog.New(slog.NewTextHandler(&buf, nil)), quiet: true}
	l.Print("sess", "Connection Established")
	allocs := testing.AllocsPerRun(100, func() { l.Print("sess", "Connection Terminated") })
	if allocs != 0 && !raceEnabled {
		t.Errorf("%v allocations per dropped line, want 0", allocs)
	}
	l.Printf("sess", "handler crashed with error: %v", "boom")
	if out := buf.String(); strings.Contains(out, "Connection") || !strings.Contains(out, "boom") {
		t.Errorf("quiet libLogger wrote:\n%s", out)
	}
}
