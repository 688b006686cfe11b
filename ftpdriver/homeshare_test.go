package ftpdriver

import (
	"os"
	"testing"
)

// TestSessionsOfAHomeShareOneDescriptor: a second session of a home costs its two
// sockets (client and server side), not a root of its own; a kicked session and a
// session that quits release their share once, and the home closes with the last.
// Not parallel: other tests' connections would move the count.
func TestSessionsOfAHomeShareOneDescriptor(t *testing.T) {
	ts := newTestServer(t)
	first := ts.dial(t)
	first.login("alice", "alice-pw")
	base := openFDs(t)
	more := ts.logins(t, "alice", "alice-pw", 3)
	if got := openFDs(t) - base; got != 3*2 {
		t.Fatalf("3 more sessions of one home hold %d descriptors, want 6 (their sockets)", got)
	}
	list, _, err := ts.srv.Sessions("", 0) // oldest first: the first session is kicked
	if err != nil {
		t.Fatal(err)
	}
	if n := ts.srv.CloseSessions(list[0].ID, ""); n != 1 {
		t.Fatalf("closed %d, want 1", n)
	}
	first.expect(421)
	_ = first.c.Close()
	waitFor(t, "the kicked session's end", func() bool { return len(sessionsOf(t, ts)["alice"]) == 3 })
	for i, rc := range more {
		if code, _ := rc.cmd("MKD d"); code != 257 && (i == 0 || code != 550) {
			t.Fatalf("MKD after a session of the home was kicked: %d", code)
		}
		rc.cmd("QUIT")
		_ = rc.c.Close()
	}
	waitFor(t, "every session's end", func() bool { return len(sessionsOf(t, ts)) == 0 })
	waitFor(t, "the home's descriptor closed", func() bool { return openFDs(t) == base-3 })
	if _, err := os.Stat(ts.home + "/d"); err != nil {
		t.Fatalf("MKD through the shared home: %v", err)
	}
}

// logins opens n control connections, each logged in as user.
func (ts *testServer) logins(t *testing.T, user, pass string, n int) []*rawConn {
	t.Helper()
	rcs := make([]*rawConn, n)
	for i := range rcs {
		rcs[i] = ts.dial(t)
		rcs[i].login(user, pass)
	}
	return rcs
}
