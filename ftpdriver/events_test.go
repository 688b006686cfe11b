package ftpdriver

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
)

func describe(e djangoclient.Event) string {
	s := e.Type
	if e.Username != nil {
		s += " user=" + *e.Username
	}
	if e.Path != nil {
		s += " path=" + *e.Path
	}
	if e.ToPath != nil {
		s += " to=" + *e.ToPath
	}
	if e.Bytes != nil {
		s += fmt.Sprintf(" bytes=%d", *e.Bytes)
	}
	return s
}

// TestEventsOfASession: every action of a session becomes one event, in order, with
// the session's id and client address, and never a password.
func TestEventsOfASession(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.cmd("USER alice")
	rc.cmd("PASS not-the-password")
	rc.login("alice", "alice-pw")
	rc.cmd("MKD d")
	rc.cmd("RNFR d")
	rc.cmd("RNTO e")
	rc.cmd("RMD e")
	rc.cmd("DELE missing.txt")
	rc.cmd("QUIT")
	c := ts.client(t, "alice", "alice-pw")
	if err := c.Stor("f.txt", strings.NewReader("12345")); err != nil {
		t.Fatal(err)
	}
	r, err := c.Retr("f.txt")
	if err != nil {
		t.Fatal(err)
	}
	_, _ = r.Read(make([]byte, 16))
	r.Close()
	if err := c.Delete("f.txt"); err != nil {
		t.Fatal(err)
	}

	// Order is promised per session; the first session's last events may interleave with
	// the second session's first ones.
	want := [][]string{{
		"connect", "login_failed user=alice", "login user=alice",
		"directory_created user=alice path=/d", "file_renamed user=alice path=/d to=/e",
		"directory_deleted user=alice path=/e", "logout user=alice", "disconnect user=alice",
	}, {
		"connect", "login user=alice", "file_received user=alice path=/f.txt bytes=5",
		"file_sent user=alice path=/f.txt bytes=5", "file_deleted user=alice path=/f.txt",
	}}
	deadline := time.Now().Add(5 * time.Second)
	var got [][]string
	for time.Now().Before(deadline) {
		got = nil
		index := map[string]int{} // session id → position in got, in order of first event
		for _, e := range ts.events.all() {
			if e.ClientIP != "127.0.0.1" || e.Session == "" || e.Time.IsZero() {
				t.Fatalf("event lacks session data: %+v", e)
			}
			if strings.Contains(fmt.Sprintf("%+v", e), "not-the-password") {
				t.Fatalf("event carries a password: %+v", e)
			}
			i, ok := index[e.Session]
			if !ok {
				i = len(got)
				index[e.Session] = i
				got = append(got, nil)
			}
			got[i] = append(got[i], describe(e))
		}
		if len(got) == 2 && len(got[0]) >= len(want[0]) && len(got[1]) >= len(want[1]) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	for i := range want {
		if i >= len(got) || strings.Join(got[i][:min(len(got[i]), len(want[i]))], "\n") != strings.Join(want[i], "\n") {
			t.Fatalf("events by session:\n%q\nwant:\n%q", got, want)
		}
	}
}
