package ftpdriver

import (
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/djftpd/djftpd/djangoclient"
)

// TestUSERRefusesControlCharacters: a USER argument with NUL or other control
// characters, or longer than 256 bytes, gets 501; it never reaches Django nor an event
// (a NUL in an event made PostgreSQL refuse the whole batch, issue 12 item 2).
func TestUSERRefusesControlCharacters(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	for _, name := range []string{"a\x00b", "a\x01b", "a\x1bb", "a\x7fb", "a\u0085b", "a\xffb", strings.Repeat("x", 257)} {
		// Written raw: the textproto helper would not send a NUL as it is.
		if _, err := rc.c.Write([]byte("USER " + name + "\r\n")); err != nil {
			t.Fatal(err)
		}
		if code, msg := rc.read(); code != 501 {
			t.Errorf("USER %q = %d %s, want 501", name, code, msg)
		}
		if code, msg := rc.cmd("PASS x"); code != 503 {
			t.Errorf("PASS after refused USER %q = %d %s, want 503", name, code, msg)
		}
	}
	rc.login("alice", "alice-pw") // the session is still usable
	ts.auth.mu.Lock()
	calls := len(ts.auth.calls)
	ts.auth.mu.Unlock()
	if calls != 1 {
		t.Errorf("%d auth requests, want only alice's", calls)
	}
	for _, e := range ts.events.all() {
		if e.Type == djangoclient.EventLoginFailed {
			t.Errorf("login_failed event for a refused USER: %q", *e.Username)
		}
	}
}

// TestFailedLoginUsernameTruncated: the event and the log line of a failed login hold
// the typed username cut to Django's 150 characters and free of control characters.
func TestFailedLoginUsernameTruncated(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ts := newTestServerLog(t, log, func(c *Config) { c.FailedLoginDelay = 0 })
	rc := ts.dial(t)
	long := strings.Repeat("é", 120) // 240 bytes: accepted by USER, over 150 bytes
	rc.cmd("USER %s", long)
	if code, _ := rc.cmd("PASS wrong"); code != 530 {
		t.Fatalf("PASS = %d, want 530", code)
	}
	time.Sleep(50 * time.Millisecond)
	var got string
	for _, e := range ts.events.all() {
		if e.Type == djangoclient.EventLoginFailed {
			got = *e.Username
		}
	}
	if len(got) == 0 || len(got) > maxLoggedUsername || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Errorf("login_failed username = %q (%d bytes), want a valid prefix of at most %d bytes", got, len(got), maxLoggedUsername)
	}
	if strings.Contains(logs.String(), long) {
		t.Errorf("the log holds the whole typed username:\n%s", logs.String())
	}
}

func TestLoggedUsername(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"alice", "alice"},
		{"a\x00b\nc", "a\ufffdb\ufffdc"},
		{"a\xffb", "a\ufffdb"},
		{strings.Repeat("a", 200), strings.Repeat("a", maxLoggedUsername)},
		{strings.Repeat("a", 149) + "é", strings.Repeat("a", 149)}, // never half a rune
	} {
		if got := loggedUsername(tc.in); got != tc.want {
			t.Errorf("loggedUsername(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidateUsername(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in string
		ok bool
	}{
		{"alice", true},
		{"alice@example.com", true},
		{"Zoë Ünïcode", true},
		{strings.Repeat("x", maxUsernameBytes), true},
		{strings.Repeat("x", maxUsernameBytes+1), false},
		{"a\x00b", false},
		{"a\tb", false},
		{"a\u0085b", false},
		{"a\xffb", false},
	} {
		if err := validateUsername(tc.in); (err == nil) != tc.ok {
			t.Errorf("validateUsername(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

// FuzzUSER: whatever validateUsername accepts is valid UTF-8 without control
// characters and at most maxUsernameBytes long; loggedUsername always returns such a
// string of at most maxLoggedUsername bytes.
func FuzzUSER(f *testing.F) {
	for _, s := range []string{"alice", "a\x00b", "\xff", "é", strings.Repeat("x", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		clean := func(v string) bool {
			return utf8.ValidString(v) && !strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || (r >= 0x7f && r < 0xa0) })
		}
		if validateUsername(s) == nil && (len(s) > maxUsernameBytes || !clean(s)) {
			t.Fatalf("validateUsername accepted %q", s)
		}
		if l := loggedUsername(s); len(l) > maxLoggedUsername || !clean(l) {
			t.Fatalf("loggedUsername(%q) = %q", s, l)
		}
	})
}
