package ftpdriver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/djftpd/djftpd/djangoclient"
)

// waitFor polls cond until it holds or 5 s passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// sessionsOf lists every session of ts, keyed by username ("" before login).
func sessionsOf(t *testing.T, ts *testServer) map[string][]SessionInfo {
	t.Helper()
	list, next, err := ts.srv.Sessions("", 0)
	if err != nil || next != "" {
		t.Fatalf("Sessions: %v, next %q", err, next)
	}
	m := map[string][]SessionInfo{}
	for _, si := range list {
		u := ""
		if si.Username != nil {
			u = *si.Username
		}
		m[u] = append(m[u], si)
	}
	return m
}

// startUpload logs alice in and starts STOR name, sending first; it returns the
// control and data connections.
func startUpload(t *testing.T, ts *testServer, name, first string) (*rawConn, func() []byte) {
	t.Helper()
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("STOR %s", name); err != nil {
		t.Fatal(err)
	}
	data := dial()
	rc.expect(150)
	if _, err := data.Write([]byte(first)); err != nil {
		t.Fatal(err)
	}
	return rc, func() []byte {
		_ = data.SetReadDeadline(time.Now().Add(3 * time.Second))
		b := make([]byte, 1)
		n, _ := data.Read(b)
		return b[:n]
	}
}

// TestSessionsListsLoginsAndTransfers: a session before login has no user; a logged-in
// one running STOR shows the command, the path and the bytes received so far.
func TestSessionsListsLoginsAndTransfers(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	anon := ts.dial(t)
	anon.cmd("NOOP")
	startUpload(t, ts, "big.bin", strings.Repeat("x", 4096))
	waitFor(t, "the upload's first 4096 bytes", func() bool {
		m := sessionsOf(t, ts)
		return len(m["alice"]) == 1 && m["alice"][0].Transfer != nil && m["alice"][0].Transfer.Bytes == 4096
	})
	m := sessionsOf(t, ts)
	if len(m[""]) != 1 || m[""][0].Command != nil || m[""][0].Transfer != nil || m[""][0].Protocol != "ftp" {
		t.Fatalf("session before login = %+v", m[""])
	}
	a := m["alice"][0]
	x := a.Transfer
	if a.ClientIP != "127.0.0.1" || a.Command == nil || *a.Command != "STOR" || len(a.ID) != 16 ||
		x.Command != "STOR" || x.Direction != "upload" || x.Path != "/big.bin" || x.BytesPerSec <= 0 ||
		time.Since(a.ConnectedAt) > time.Minute {
		t.Fatalf("alice = %+v, transfer %+v", a, x)
	}
}

// TestCloseSessionDuringUpload: closing a session mid-upload cuts the transfer (426,
// nothing committed, incomplete event), answers 421 and closes the control connection.
func TestCloseSessionDuringUpload(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc, readData := startUpload(t, ts, "cut.bin", "partial")
	var id string
	waitFor(t, "the upload", func() bool {
		m := sessionsOf(t, ts)
		if len(m["alice"]) == 1 && m["alice"][0].Transfer != nil {
			id = m["alice"][0].ID
		}
		return id != ""
	})
	if n := ts.srv.CloseSessions(id, ""); n != 1 {
		t.Fatalf("closed %d, want 1", n)
	}
	if got := readData(); len(got) != 0 {
		t.Fatalf("data connection still open: read %q", got)
	}
	rc.expect(426)
	rc.expect(421)
	if !rc.closed() {
		t.Fatal("control connection still open")
	}
	if entries, _ := os.ReadDir(ts.home); len(entries) != 0 {
		t.Fatalf("home holds %v after a cut atomic upload", entries)
	}
	waitFor(t, "the session's end", func() bool { return len(sessionsOf(t, ts)) == 0 })
	var types []string
	for _, e := range ts.events.all() {
		types = append(types, e.Type)
	}
	if !strings.Contains(strings.Join(types, ","), djangoclient.EventIncompleteFileReceived+",") {
		t.Fatalf("events = %v, want an incomplete upload", types)
	}
	var m dto.Metric
	if err := ts.srv.cfg.Metrics.sessionsClosed.WithLabelValues("admin").Write(&m); err != nil || m.GetCounter().GetValue() != 1 {
		got := m.GetCounter().GetValue()
		t.Fatalf("sessions_closed_total{reason=admin} = %v", got)
	}
	if n := ts.srv.CloseSessions(id, ""); n != 0 {
		t.Fatalf("closing a gone session closed %d", n)
	}
}

// TestCloseSessionsOfAUser: every session of the user ends with 421, idle or not;
// other users' sessions go on.
func TestCloseSessionsOfAUser(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	alices := ts.logins(t, "alice", "alice-pw", 2)
	bob := ts.dial(t)
	bob.login("bob", "bob-pw")
	if err := os.MkdirAll(filepath.Join(filepath.Dir(ts.home), "bob"), 0o750); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ id, user string }{{"", ""}, {"x", "alice"}, {"", "carol"}, {"0123456789abcdef", ""}} {
		if n := ts.srv.CloseSessions(tt.id, tt.user); n != 0 {
			t.Fatalf("CloseSessions(%q, %q) closed %d", tt.id, tt.user, n)
		}
	}
	if n := ts.srv.CloseSessions("", "alice"); n != 2 {
		t.Fatalf("closed %d, want 2", n)
	}
	for i, rc := range alices {
		if code, msg := rc.read(); code != 421 || !strings.Contains(msg, "administrator") {
			t.Fatalf("alice %d: %d %s, want 421", i, code, msg)
		}
		if !rc.closed() {
			t.Fatalf("alice %d still connected", i)
		}
	}
	if code, _ := bob.cmd("NOOP"); code != 200 {
		t.Fatalf("bob's NOOP = %d after closing alice", code)
	}
}

// TestSessionsPages: pages of limit sessions, oldest first, each session once.
func TestSessionsPages(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	for range 5 {
		ts.dial(t).cmd("NOOP")
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		list, next, err := ts.srv.Sessions(cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for i, si := range list {
			if seen[si.ID] || (i > 0 && si.ConnectedAt.Before(list[i-1].ConnectedAt)) {
				t.Fatalf("page %d: %s repeated or out of order", pages, si.ID)
			}
			seen[si.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != 5 || pages != 3 {
		t.Fatalf("%d sessions in %d pages, want 5 in 3", len(seen), pages)
	}
	if _, _, err := ts.srv.Sessions("garbage", 0); err == nil {
		t.Fatal("a malformed cursor was accepted")
	}
}

func FuzzParseCursor(f *testing.F) {
	for _, s := range []string{"", "1.0123456789abcdef", "-1.0123456789abcdef", "1.", ".", "9999999999999999999.a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseCursor(s)
		if err == nil && s != "" && k.String() != s {
			t.Fatalf("%q parsed as %q", s, k.String())
		}
	})
}
