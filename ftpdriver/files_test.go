package ftpdriver

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
)

func (ts *testServer) client(t *testing.T, user, pass string) *ftp.ServerConn {
	t.Helper()
	c, err := ftp.Dial(ts.addr, ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Quit() })
	if err := c.Login(user, pass); err != nil {
		t.Fatalf("login %s: %v", user, err)
	}
	return c
}

func TestUploadDownloadRoundTrip(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.client(t, "alice", "alice-pw")
	data := make([]byte, 3<<20+17)
	_, _ = rand.Read(data)
	if err := c.Stor("big.bin", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	r, err := c.Retr("big.bin")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("downloaded %d bytes (err %v), want the %d uploaded", len(got), err, len(data))
	}
	if size, err := c.FileSize("big.bin"); err != nil || size != int64(len(data)) {
		t.Fatalf("SIZE = %d, %v", size, err)
	}
	onDisk, _ := os.ReadFile(filepath.Join(ts.home, "big.bin"))
	if !bytes.Equal(onDisk, data) {
		t.Fatal("file on disk differs from the upload")
	}
}

func TestResumeDownloadAndAppend(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.client(t, "alice", "alice-pw")
	if err := c.Stor("f.txt", strings.NewReader("hello ")); err != nil {
		t.Fatal(err)
	}
	if err := c.Append("f.txt", strings.NewReader("world")); err != nil {
		t.Fatal(err)
	}
	r, err := c.RetrFrom("f.txt", 6)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "world" {
		t.Fatalf("RETR from 6 = %q", got)
	}
	if err := c.StorFrom("f.txt", strings.NewReader("there"), 6); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(ts.home, "f.txt")); string(b) != "hello there" {
		t.Fatalf("after REST+STOR: %q", b)
	}
}

func TestDirectoryCommands(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.client(t, "alice", "alice-pw")
	if err := c.MakeDir(`we ird dir`); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangeDir(`we ird dir`); err != nil {
		t.Fatal(err)
	}
	if dir, err := c.CurrentDir(); err != nil || dir != `/we ird dir` {
		t.Fatalf("PWD = %q, %v", dir, err)
	}
	if err := c.Stor("a.txt", strings.NewReader("a")); err != nil {
		t.Fatal(err)
	}
	if err := c.Rename("a.txt", "/b.txt"); err != nil {
		t.Fatal(err)
	}
	if err := c.ChangeDirToParent(); err != nil {
		t.Fatal(err)
	}
	names, err := c.NameList("/")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"b.txt", `we ird dir`}) {
		t.Fatalf("NLST = %q", names)
	}
	entries, err := c.List("/") // MLSD, which adds the listed directory itself
	var names2 []string
	for _, e := range entries {
		if e.Name != "." && e.Name != "/" {
			names2 = append(names2, e.Name)
		}
	}
	slices.Sort(names2)
	if err != nil || !slices.Equal(names2, []string{"b.txt", `we ird dir`}) {
		t.Fatalf("MLSD = %q, %v", names2, err)
	}
	if err := c.RemoveDir(`we ird dir`); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("b.txt"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete("b.txt"); err == nil {
		t.Fatal("deleting a missing file succeeded")
	}
}

func TestMKDQuotesPath(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	if code, msg := rc.cmd(`MKD a"b`); code != 257 || !strings.HasPrefix(msg, `"/a""b" `) {
		t.Fatalf("MKD = %d %q", code, msg)
	}
	rc.cmd(`CWD a"b`)
	if code, msg := rc.cmd("PWD"); code != 257 || !strings.HasPrefix(msg, `"/a""b" `) {
		t.Fatalf("PWD = %d %q", code, msg)
	}
}

// TestConfinement pins DESIGN.md §4 "Sandbox" and §8 "its file driver joins paths by
// hand (symlink escape)": nothing outside the home is reachable.
func TestConfinement(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.client(t, "alice", "alice-pw")
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(ts.home, "escape")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(outside, "secret.txt"), filepath.Join(ts.home, "secret-link")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{
		"../../../../../../../" + outside + "/secret.txt",
		outside + "/secret.txt",
		"escape/secret.txt",
		"secret-link",
		"/etc/passwd",
	} {
		if r, err := c.Retr(p); err == nil {
			b, _ := io.ReadAll(r)
			r.Close()
			t.Errorf("RETR %q succeeded: %q", p, b)
		}
	}
	if err := c.Stor("escape/planted.txt", strings.NewReader("x")); err == nil {
		t.Error("STOR through a symlink to outside succeeded")
	}
	if _, err := os.Stat(filepath.Join(outside, "planted.txt")); err == nil {
		t.Error("a file was planted outside the home")
	}
	if err := c.ChangeDir("escape"); err == nil {
		t.Error("CWD through a symlink to outside succeeded")
	}
	if err := c.ChangeDir("../.."); err != nil {
		t.Fatal(err)
	}
	if dir, _ := c.CurrentDir(); dir != "/" {
		t.Fatalf("CWD ../.. left the home: PWD = %q", dir)
	}
}

// TestPermLetters checks each command against its letter (DESIGN.md §4): bob has
// only "elr".
func TestPermLetters(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	alice := ts.client(t, "alice", "alice-pw")
	if err := alice.MakeDir("/keep"); err != nil {
		t.Fatal(err)
	}
	_ = os.MkdirAll(filepath.Join(ts.home, "../bob/sub"), 0o750)
	_ = os.WriteFile(filepath.Join(ts.home, "../bob/f.txt"), []byte("bob"), 0o640)

	rc := ts.dial(t)
	rc.login("bob", "bob-pw")
	denied := map[string]string{
		"APPE": "APPE f.txt", "DELE": "DELE f.txt", "RMD": "RMD sub", "XRMD": "XRMD sub",
		"RNFR": "RNFR f.txt", "RNTO": "RNTO g.txt", "MKD": "MKD new", "XMKD": "XMKD new",
		"STOR": "STOR new.txt", "STOU": "STOU",
		"MFMT": "MFMT 20200101000000 f.txt", "SITE CHMOD": "SITE CHMOD 600 f.txt",
	}
	for verb, letters := range commandPerms {
		line, isDenied := denied[verb]
		if strings.Trim(letters, "elr") != "" && !isDenied {
			t.Errorf("%s needs %q but the test does not try it", verb, letters)
			continue
		}
		if !isDenied {
			continue
		}
		if code, msg := rc.cmd("%s", line); code != 550 || msg != "Permission denied" {
			t.Errorf("bob %s = %d %q, want 550 Permission denied", line, code, msg)
		}
	}
	b := ts.client(t, "bob", "bob-pw")
	if _, err := b.List("/"); err != nil {
		t.Errorf("bob LIST: %v", err)
	}
	if r, err := b.Retr("f.txt"); err != nil {
		t.Errorf("bob RETR: %v", err)
	} else {
		r.Close()
	}
	if err := b.ChangeDir("sub"); err != nil {
		t.Errorf("bob CWD: %v", err)
	}
}

func TestFEATListsWhatWorks(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	code, msg := rc.cmd("FEAT")
	if code != 211 {
		t.Fatalf("FEAT = %d", code)
	}
	for _, want := range []string{"EPSV", "EPRT", "SIZE", "MDTM", "REST STREAM", "UTF8"} {
		if !strings.Contains(msg, "\n "+want+"\n") {
			t.Errorf("FEAT lacks %s:\n%s", want, msg)
		}
	}
}

func TestUploadTempFilesAreHidden(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.client(t, "alice", "alice-pw")
	if err := os.WriteFile(filepath.Join(ts.home, uploadTempPrefix+"x.part"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	names, err := c.NameList("/")
	if err != nil || len(names) != 0 {
		t.Fatalf("NLST = %q, %v; want no entries", names, err)
	}
}

func TestListLine(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	dir := t.TempDir()
	p := filepath.Join(dir, "a file.txt")
	if err := os.WriteFile(p, []byte("12345"), 0o640); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		mod  time.Time
		want string
	}{
		{time.Date(2026, 11, 1, 9, 5, 0, 0, time.UTC), "-rw-r----- 1 ftp ftp            5 Nov  1 09:05 a file.txt\r\n"},
		{time.Date(2020, 2, 3, 9, 5, 0, 0, time.UTC), "-rw-r----- 1 ftp ftp            5 Feb  3  2020 a file.txt\r\n"},
	}
	for _, tt := range tests {
		if err := os.Chtimes(p, tt.mod, tt.mod); err != nil {
			t.Fatal(err)
		}
		fi, _ := os.Stat(p)
		if got := listLine(fi, now); got != tt.want {
			t.Errorf("listLine = %q, want %q", got, tt.want)
		}
	}
}

func TestBadPathArguments(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	if code, _ := rc.cmd("MKD bad\xffname"); code != 553 {
		t.Fatalf("MKD with invalid UTF-8 = %d, want 553", code)
	}
}

// TestRNTONeedsTheRNFRJustBefore: a failed RNFR, or any command in between, leaves
// nothing for RNTO to rename.
func TestRNTONeedsTheRNFRJustBefore(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	if err := os.WriteFile(filepath.Join(ts.home, "a.txt"), []byte("a"), 0o640); err != nil {
		t.Fatal(err)
	}
	rc.cmd("RNFR a.txt")
	if code, _ := rc.cmd("RNFR missing.txt"); code != 550 {
		t.Fatalf("RNFR missing = %d", code)
	}
	if code, _ := rc.cmd("RNTO b.txt"); code != 503 {
		t.Fatalf("RNTO after a failed RNFR = %d, want 503", code)
	}
	rc.cmd("RNFR a.txt")
	rc.cmd("NOOP")
	if code, _ := rc.cmd("RNTO b.txt"); code != 503 {
		t.Fatalf("RNTO after RNFR, NOOP = %d, want 503", code)
	}
	if _, err := os.Stat(filepath.Join(ts.home, "a.txt")); err != nil {
		t.Fatal("a.txt was renamed")
	}
}

func TestOddFileNamesRoundTrip(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	c := ts.client(t, "alice", "alice-pw")
	for _, name := range []string{"with space.txt", `quote"d.txt`, "-leading-dash", "ünïcødé-日本.txt", "emoji-🙂.bin"} {
		if err := c.Stor(name, strings.NewReader(name)); err != nil {
			t.Fatalf("STOR %q: %v", name, err)
		}
		r, err := c.Retr(name)
		if err != nil {
			t.Fatalf("RETR %q: %v", name, err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		if string(b) != name {
			t.Fatalf("%q came back as %q", name, b)
		}
		if _, err := os.Stat(filepath.Join(ts.home, name)); err != nil {
			t.Fatalf("%q not on disk under its name: %v", name, err)
		}
	}
}

// TestRefusalsNameTheReason (issue 20 item 6): "550 Permission denied" is a missing
// permission letter only; each other refusal says what is wrong.
func TestRefusalsNameTheReason(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	if err := os.MkdirAll(filepath.Join(ts.home, "full", "inner"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ts.home, "f.txt"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(ts.home, "out")); err != nil {
		t.Fatal(err)
	}
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	cases := []struct {
		lines []string // the last one is checked
		code  int
		text  string
	}{
		{[]string{"RMD /"}, 550, "The home directory cannot be removed or renamed"},
		{[]string{"RNFR /"}, 550, "The home directory cannot be removed or renamed"},
		{[]string{"DELE missing.txt"}, 550, "No such file or directory"},
		{[]string{"RMD full"}, 550, "Directory not empty"},
		{[]string{"MKD full"}, 550, "File exists"},
		{[]string{"RNFR full", "RNTO f.txt"}, 550, "Not a directory"},
		{[]string{"DELE full"}, 550, "Is a directory"},
		{[]string{"CWD f.txt"}, 550, "Not a directory"},
		{[]string{"CWD out"}, 550, "Path leaves the home directory"},
		{[]string{"MKD bad\x00name"}, 553, "File name not allowed"},
	}
	for _, c := range cases {
		var code int
		var text string
		for _, line := range c.lines {
			code, text = rc.cmd("%s", line)
		}
		if code != c.code || text != c.text {
			t.Errorf("%v = %d %q, want %d %q", c.lines, code, text, c.code, c.text)
		}
	}
}
