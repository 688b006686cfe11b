package ftpdriver

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
)

// TestRefusedUploadChangesNothing: an upload command that is refused — no data
// channel, a data connection from a foreign address, the quota used up, no
// permission letter — leaves every file as it was, bytes and mtime, and creates no
// file, temporary or new (issue 20: REST+STOR truncated, APPE created an empty file,
// standard-mode STOR truncated before answering 425).
func TestRefusedUploadChangesNothing(t *testing.T) {
	t.Parallel()
	commands := []string{"STOR f.txt", "STOR new.txt", "STOU", "APPE f.txt", "APPE new.txt", "REST 3|STOR f.txt"}
	cases := []struct {
		name  string
		perms string
		quota bool   // the user's quota is exactly what the home holds
		data  string // "", "epsv" (the client connects) or "foreign" (from 127.0.0.2)
		want  int
	}{
		{"no data channel", "elradfmwMT", false, "", 425},
		{"foreign data peer", "elradfmwMT", false, "foreign", 425},
		{"quota used up", "elradfmwMT", true, "epsv", 552},
		{"no letter", "elr", false, "epsv", 550},
	}
	content := []byte("0123456789")
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, mode := range []string{"atomic", "standard"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t, func(c *Config) {
				c.AtomicUploads = mode == "atomic"
				c.DataTimeout = 300 * time.Millisecond
			})
			root := filepath.Dir(ts.home)
			quota := int64(len(content))
			for i, tc := range cases {
				for j := range commands {
					user := fmt.Sprintf("u%d-%d", i, j)
					g := djangoclient.Grant{Username: user, Home: filepath.Join(root, user), Perms: tc.perms}
					if tc.quota {
						g.QuotaBytes = &quota
					}
					ts.auth.grants[user+":pw"] = g
					home := g.Home
					if err := os.MkdirAll(home, 0o750); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(filepath.Join(home, "f.txt"), content, 0o640); err != nil {
						t.Fatal(err)
					}
					if err := os.Chtimes(filepath.Join(home, "f.txt"), mtime, mtime); err != nil {
						t.Fatal(err)
					}
				}
			}
			for i, tc := range cases {
				for j, line := range commands {
					user := fmt.Sprintf("u%d-%d", i, j)
					if code := refusedUpload(t, ts, user, line, tc.data); code != tc.want {
						t.Errorf("%s, %s: final reply %d, want %d", tc.name, line, code, tc.want)
					}
					home := filepath.Join(root, user)
					checkUntouched(t, tc.name+", "+line, home, content, mtime)
				}
			}
		})
	}
}

// refusedUpload logs in as user, sets up the data channel as data says, sends line
// ("A|B": A first) and returns the final reply code. When the server answers 150, it
// connects and sends bytes, as a client would.
func refusedUpload(t *testing.T, ts *testServer, user, line, data string) int {
	t.Helper()
	rc := ts.dial(t)
	rc.login(user, "pw")
	var dial func() net.Conn
	port := 0
	switch data {
	case "epsv":
		dial = rc.epsvData(t, ts.addr)
	case "foreign":
		_, msg := rc.cmd("EPSV")
		if _, err := fmt.Sscanf(msg[strings.Index(msg, "(|||"):], "(|||%d|)", &port); err != nil {
			t.Fatalf("EPSV %q: %v", msg, err)
		}
	}
	cmds := strings.Split(line, "|")
	for _, c := range cmds[:len(cmds)-1] {
		rc.cmd("%s", c)
	}
	code, _ := rc.cmd("%s", cmds[len(cmds)-1])
	if code != 150 {
		return code
	}
	switch data {
	case "foreign":
		foreignDial(t, ts, port)
	case "epsv":
		c := dial()
		_, _ = c.Write(bytes.Repeat([]byte("x"), 100))
		c.Close()
	}
	code, _ = rc.read()
	return code
}

// foreignDial connects to the passive port from 127.0.0.2 and sends bytes.
func foreignDial(t *testing.T, ts *testServer, port int) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	host, _, _ := net.SplitHostPort(ts.addr)
	c, err := d.Dial("tcp", net.JoinHostPort(host, fmt.Sprint(port)))
	if err != nil {
		t.Skipf("cannot connect from 127.0.0.2: %v", err)
	}
	_, _ = c.Write([]byte("stolen"))
	c.Close()
}

// checkUntouched asserts home holds only f.txt, with its old bytes and mtime.
func checkUntouched(t *testing.T, what, home string, content []byte, mtime time.Time) {
	t.Helper()
	entries, _ := os.ReadDir(home)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != "f.txt" {
		t.Errorf("%s: home holds %q, want only f.txt", what, names)
	}
	p := filepath.Join(home, "f.txt")
	if b, _ := os.ReadFile(p); !bytes.Equal(b, content) {
		t.Errorf("%s: f.txt = %q, want %q", what, b, content)
	}
	if fi, err := os.Stat(p); err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("%s: f.txt mtime changed (%v)", what, err)
	}
}
