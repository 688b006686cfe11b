package ftpdriver

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestOneInfoLinePerSession: at INFO a session logs one line, at its end, with the
// user, the bytes moved and how it ended; a failed login keeps its own line with the
// typed name. Start and login are DEBUG.
func TestOneInfoLinePerSession(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		run  func(t *testing.T, ts *testServer, rc *rawConn)
		want [][]string // the lines, in order, each as the substrings it holds
	}{
		{"login and quit", func(t *testing.T, _ *testServer, rc *rawConn) {
			rc.login("alice", "alice-pw")
			rc.cmd("QUIT")
		}, [][]string{{`msg="session end"`, ` user=alice `, ` bytes_in=0 bytes_out=0 outcome=quit`}}},
		{"download, client closes", func(t *testing.T, ts *testServer, rc *rawConn) {
			rc.login("alice", "alice-pw")
			if err := os.WriteFile(filepath.Join(ts.home, "f.txt"), []byte("hello"), 0o600); err != nil {
				t.Fatal(err)
			}
			if got, code := transferOn(t, ts, rc, "RETR f.txt", nil); code != 226 || string(got) != "hello" {
				t.Fatalf("RETR = %d %q, want 226 \"hello\"", code, got)
			}
			rc.c.Close()
		}, [][]string{{`msg="transfer complete"`, ` user=alice `, " bytes=5 "},
			{`msg="session end"`, ` user=alice `, ` bytes_in=0 bytes_out=5 outcome=client_closed`}}},
		{"failed login", func(t *testing.T, _ *testServer, rc *rawConn) {
			rc.cmd("USER mallory")
			rc.cmd("PASS nope")
			rc.cmd("QUIT")
		}, [][]string{{`level=INFO msg="login failed"`, ` user=mallory`},
			{`msg="session end"`, ` outcome=quit failed_logins=1`}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ts, logs := newTestServerLogs(t, slog.LevelInfo, func(c *Config) { c.FailedLoginDelay = 0 })
			tt.run(t, ts, ts.dial(t))
			waitFor(t, "the session-end line", func() bool { return strings.Contains(logs.String(), "session end") })
			time.Sleep(20 * time.Millisecond) // nothing may follow it
			out := logs.String()
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("%d lines at INFO, want %d:\n%s", len(lines), len(tt.want), out)
			}
			for i, parts := range tt.want {
				for _, p := range parts {
					if !strings.Contains(lines[i], p) {
						t.Errorf("line %d has no %q:\n%s", i+1, p, out)
					}
				}
			}
		})
	}
}

// TestDebugKeepsSessionDetail: what INFO no longer says per session is at DEBUG.
func TestDebugKeepsSessionDetail(t *testing.T) {
	t.Parallel()
	ts, logs := newTestServerLogs(t, slog.LevelDebug)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	rc.cmd("QUIT")
	waitFor(t, "the session-end line", func() bool { return strings.Contains(logs.String(), "session end") })
	for _, want := range []string{`msg="session start"`, `msg=login `, "perms=elradfmwMT", "cmd=USER", "code=230", `detail="Connection Established"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %q at DEBUG:\n%s", want, logs.String())
		}
	}
}

// newTestServerLogs is newTestServer logging text at level into the returned buffer.
func newTestServerLogs(t *testing.T, level slog.Level, mutate ...func(*Config)) (*testServer, *lockedBuffer) {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: level}))
	return newTestServerLog(t, log, mutate...), logs
}
