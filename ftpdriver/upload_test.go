package ftpdriver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/djftpd/djftpd/access"
	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/storage"
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

// withQuota gives alice a quota.
func (ts *testServer) withQuota(quota int64) {
	g := ts.auth.grants["alice:alice-pw"]
	g.QuotaBytes = &quota
	ts.auth.grants["alice:alice-pw"] = g
	_ = os.MkdirAll(ts.home, 0o750)
}

// homeBytes is the sum of the sizes of the files in alice's home.
func (ts *testServer) homeBytes(t *testing.T) int64 {
	t.Helper()
	var total int64
	err := filepath.WalkDir(ts.home, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, ierr := d.Info(); ierr == nil {
				total += fi.Size()
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return total
}

// TestQuotaConcurrentUploads: two sessions of one user upload at the same time; each
// would fit alone, both do not. Before, each passed the check made before data flowed
// and 160 bytes were stored against a quota of 100 (issue 12 item 4).
func TestQuotaConcurrentUploads(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.withQuota(100)
	// Both commands are accepted (150) before either data connection opens, so both
	// uploads pass every check made before data flows.
	var rcs []*rawConn
	var dials []func() net.Conn
	for i := range 2 {
		rc := ts.dial(t)
		rc.login("alice", "alice-pw")
		dials = append(dials, rc.epsvData(t, ts.addr))
		if code, msg := rc.cmd("STOR f%d.bin", i); code != 150 {
			t.Fatalf("STOR f%d.bin = %d %s", i, code, msg)
		}
		rcs = append(rcs, rc)
	}
	var data []net.Conn
	for _, dial := range dials {
		data = append(data, dial())
	}
	for _, c := range data {
		_, _ = c.Write(bytes.Repeat([]byte("x"), 80))
		c.Close()
	}
	codes := map[int]int{}
	for _, rc := range rcs {
		code, _ := rc.read()
		codes[code]++
	}
	if codes[226] != 1 || codes[552] != 1 {
		t.Errorf("final replies %v, want one 226 and one 552", codes)
	}
	if n := ts.homeBytes(t); n > 100 {
		t.Errorf("home holds %d bytes, quota is 100", n)
	}
}

// TestQuotaCountsAbortedInPlaceUploads: an in-place upload (APPE, REST+STOR) stopped by
// ABOR keeps the bytes that arrived, and they count against the quota.
func TestQuotaCountsAbortedInPlaceUploads(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		cmds     []string
		wantSize int64 // f.txt's size after 300 bytes arrived
	}{
		{"APPE", []string{"APPE f.txt"}, 400},
		{"REST+STOR", []string{"REST 50", "STOR f.txt"}, 350},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := newTestServer(t)
			ts.withQuota(1000)
			p := filepath.Join(ts.home, "f.txt")
			_ = os.WriteFile(p, bytes.Repeat([]byte("o"), 100), 0o640)
			rc := ts.dial(t)
			rc.login("alice", "alice-pw")
			dial := rc.epsvData(t, ts.addr)
			for _, c := range tc.cmds[:len(tc.cmds)-1] {
				rc.cmd("%s", c)
			}
			if err := rc.tp.PrintfLine("%s", tc.cmds[len(tc.cmds)-1]); err != nil {
				t.Fatal(err)
			}
			c := dial()
			rc.expect(150)
			_, _ = c.Write(bytes.Repeat([]byte("n"), 300))
			waitSize(t, p, tc.wantSize)
			if err := rc.tp.PrintfLine("ABOR"); err != nil {
				t.Fatal(err)
			}
			rc.expect(426)
			rc.expect(226)
			want := fmt.Sprint(1000 - tc.wantSize)
			if code, msg := rc.cmd("AVBL"); code != 213 || msg != want {
				t.Errorf("AVBL = %d %s, want %s", code, msg, want)
			}
		})
	}
}

// waitSize waits until the file at p is size bytes long.
func waitSize(t *testing.T, p string, size int64) {
	t.Helper()
	for range 500 {
		if fi, err := os.Stat(p); err == nil && fi.Size() == size {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never reached %d bytes", p, size)
}

// TestQuotaOverInPlaceLeavesFile: an APPE that runs over quota mid-transfer answers 552
// and leaves the file as it was, bytes and mtime; exactly the limit fits.
func TestQuotaOverInPlaceLeavesFile(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.withQuota(300)
	p := filepath.Join(ts.home, "f.txt")
	_ = os.WriteFile(p, bytes.Repeat([]byte("o"), 100), 0o640)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	_ = os.Chtimes(p, mtime, mtime)
	c := ts.client(t, "alice", "alice-pw")
	if err := c.Append("f.txt", bytes.NewReader(bytes.Repeat([]byte("a"), 201))); err == nil || !strings.Contains(err.Error(), "552") {
		t.Fatalf("APPE 1 byte over quota: %v, want 552", err)
	}
	checkUntouched(t, "APPE over quota", ts.home, bytes.Repeat([]byte("o"), 100), mtime)
	if err := c.Append("f.txt", bytes.NewReader(bytes.Repeat([]byte("a"), 200))); err != nil {
		t.Fatalf("APPE exactly to the quota: %v", err)
	}
	if n := ts.homeBytes(t); n != 300 {
		t.Fatalf("home holds %d bytes, want 300", n)
	}
}

// TestQuotaUsageRecomputedAtLogin: a file another replica wrote into the shared home
// counts once the cached figure is older than the refresh interval.
func TestQuotaUsageRecomputedAtLogin(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.withQuota(1000)
	ts.srv.access.SetUsageWalk(time.Millisecond, 0, 0)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	if code, msg := rc.cmd("AVBL"); code != 213 || msg != "1000" {
		t.Fatalf("AVBL = %d %s, want 1000", code, msg)
	}
	_ = os.WriteFile(filepath.Join(ts.home, "elsewhere.bin"), bytes.Repeat([]byte("e"), 400), 0o640)
	time.Sleep(5 * time.Millisecond)
	rc2 := ts.dial(t)
	rc2.login("alice", "alice-pw")
	if code, msg := rc2.cmd("AVBL"); code != 213 || msg != "600" {
		t.Fatalf("AVBL after another replica's upload = %d %s, want 600", code, msg)
	}
}

// TestUploadOpenFailsAfter150: when the upload's file cannot be opened once the data
// connection is up (here its directory went away after 150), the reply names the file
// error and nothing is created.
func TestUploadOpenFailsAfter150(t *testing.T) {
	t.Parallel()
	for _, atomic := range []bool{true, false} {
		ts := newTestServer(t, func(c *Config) { c.AtomicUploads = atomic })
		rc := ts.dial(t)
		rc.login("alice", "alice-pw")
		sub := filepath.Join(ts.home, "sub")
		if err := os.Mkdir(sub, 0o750); err != nil {
			t.Fatal(err)
		}
		if code, msg := rc.cmd("STOR sub/missing/x.txt"); code != 550 {
			t.Errorf("STOR into a missing directory = %d %s, want 550 before 150", code, msg)
		}
		dial := rc.epsvData(t, ts.addr)
		rc.expectCmd(t, "STOR sub/x.txt", 150)
		if err := os.Remove(sub); err != nil {
			t.Fatal(err)
		}
		c := dial()
		_, _ = c.Write([]byte("data"))
		c.Close()
		if code, msg := rc.read(); code != 550 {
			t.Errorf("atomic=%v: final reply %d %s, want 550", atomic, code, msg)
		}
		if entries, _ := os.ReadDir(ts.home); len(entries) != 0 {
			t.Errorf("atomic=%v: home holds %d entries, want none", atomic, len(entries))
		}
	}
}

func (rc *rawConn) expectCmd(t *testing.T, line string, want int) {
	t.Helper()
	if code, msg := rc.cmd("%s", line); code != want {
		t.Fatalf("%s = %d %s, want %d", line, code, msg, want)
	}
}

// TestUploadValue drives the upload value the way a front end without a data
// connection (SFTP) will: check, Open, Write, then Commit or Abort.
func TestUploadValue(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		atomic   bool
		mode     writeMode
		limit    int64 // quota bytes; 0 for none
		write    string
		abort    bool
		want     string // the file afterwards; "-" for no file
		wantErr  error
		wantUsed int64 // usage change recorded
	}{
		{"atomic commit", true, writeReplace, 0, "new", false, "new", nil, 0 - 3 + 3},
		{"atomic abort", true, writeReplace, 0, "new", true, "old", nil, 0},
		{"append commit", false, writeAppend, 0, "+", false, "old+", nil, 1},
		{"in place abort keeps what arrived", false, writeReplace, 0, "ne", true, "ne", nil, -1},
		{"append over quota", false, writeAppend, 5, "+++", true, "old", errQuotaExceeded, 0},
		{"atomic over quota", true, writeReplace, 5, "123456789", true, "old", errQuotaExceeded, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "f"), []byte("old"), 0o640); err != nil {
				t.Fatal(err)
			}
			root, err := os.OpenRoot(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			var used int64
			up := &upload{root: root, fs: storage.NewLocalFS(root), virtual: "/f", rel: "f", appendMode: c.mode == writeAppend,
				settleUsage: func(d int64) { used += d }}
			if err := up.check(c.atomic); err != nil {
				t.Fatal(err)
			}
			var user *access.User
			if c.limit > 0 {
				user = quotaUser(t, dir, c.limit)
				if up.quota, err = user.GuardQuota(up.oldSize - up.kept); err != nil {
					t.Fatal(err)
				}
				up.settleUsage = nil
			}
			if err := up.Open(); err != nil {
				t.Fatal(err)
			}
			_, werr := up.Write([]byte(c.write))
			if !errors.Is(werr, c.wantErr) {
				t.Fatalf("Write = %v, want %v", werr, c.wantErr)
			}
			if c.abort {
				err = up.Abort(errors.Join(werr, errAborted))
			} else {
				err = up.Commit()
			}
			if c.abort == (err == nil) {
				t.Fatalf("end = %v", err)
			}
			got, _ := os.ReadFile(filepath.Join(dir, "f"))
			if string(got) != c.want {
				t.Errorf("file = %q, want %q", got, c.want)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("%d entries left in the home, want 1", len(entries))
			}
			if user != nil {
				left, err := user.QuotaLeft()
				if err != nil {
					t.Fatal(err)
				}
				used = c.limit - left - 3 // nothing stays reserved
			}
			if used != c.wantUsed {
				t.Errorf("usage change %d, want %d", used, c.wantUsed)
			}
		})
	}
}

// quotaUser logs in a user whose home is dir, with a quota of limit bytes.
func quotaUser(t *testing.T, dir string, limit int64) *access.User {
	t.Helper()
	auth := &fakeAuth{grants: map[string]djangoclient.Grant{
		"q:pw": {Username: "q", Home: dir, Perms: "elradfmw", QuotaBytes: &limit},
	}}
	core, err := access.New(access.Config{HomeRoot: filepath.Dir(dir), MaxLoginAttempts: 1}, auth)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { core.Close() })
	u, err := core.Login(context.Background(), access.LoginRequest{Username: "q", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	return u
}
