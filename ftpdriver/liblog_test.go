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
