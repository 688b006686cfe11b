package sftpd

import (
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/storage"
)

// testUser is a User over a directory with fixed perms; it records events.
type testUser struct {
	perms string
	root  *os.Root
	fs    storage.FS // object-storage homes: root is nil

	mu     sync.Mutex
	events []djangoclient.Event
	closed bool
}

func (u *testUser) Name() string    { return "alice" }
func (u *testUser) Can(p byte) bool { return strings.IndexByte(u.perms, p) >= 0 }
func (u *testUser) Root() *os.Root  { return u.root }
func (u *testUser) FS() storage.FS  { return u.fs }
func (u *testUser) Emit(e djangoclient.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.events = append(u.events, e)
}
func (u *testUser) Close() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.closed = true
}

func (u *testUser) eventTypes() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, e := range u.events {
		out = append(out, e.Type)
	}
	return out
}

// serveDir serves dir as u's home through servePipe.
func serveDir(t *testing.T, dir, perms string) (*sftp.Client, *testUser, func()) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() }) // after the server's end (cleanups run last first)
	u := &testUser{perms: perms, root: root}
	c, cut := servePipe(t, newHandlers(u, true, nil))
	return c, u, cut
}

// servePipe runs a real request server with h on one end of a pipe and returns a real
// pkg/sftp client on the other, and a function cutting the connection (run at cleanup too).
func servePipe(t *testing.T, h sftp.Handlers) (*sftp.Client, func()) {
	t.Helper()
	srvConn, cliConn := net.Pipe()
	rs := sftp.NewRequestServer(srvConn, h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = rs.Serve()
	}()
	c, err := sftp.NewClientPipe(cliConn, cliConn)
	if err != nil {
		t.Fatal(err)
	}
	cut := func() {
		cliConn.Close()
		srvConn.Close()
		<-done
	}
	t.Cleanup(func() {
		c.Close()
		cut()
	})
	return c, cut
}

// fixture is a home with a file, a directory, a link inside and a link leading out.
func fixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "f"), []byte("0123456789"), 0o640))
	must(t, os.Mkdir(filepath.Join(dir, "d"), 0o750))
	must(t, os.Symlink("f", filepath.Join(dir, "link")))
	must(t, os.Symlink("../../etc/passwd", filepath.Join(dir, "out")))
	must(t, os.Symlink("/etc/passwd", filepath.Join(dir, "abs")))
	return dir
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func writeAt(c *sftp.Client, name string, flags int, data string, off int64) error {
	f, err := c.OpenFile(name, flags)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt([]byte(data), off); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// TestPermissionTable runs every SFTP request type with all letters, then without the
// letter(s) it needs: it must succeed, then get SSH_FX_PERMISSION_DENIED (issue 16 item 3).
func TestPermissionTable(t *testing.T) {
	tests := []struct {
		name    string
		letters string // any one of them suffices
		op      func(c *sftp.Client) error
	}{
		{"stat", "el", func(c *sftp.Client) error { _, err := c.Stat("/f"); return err }},
		{"lstat", "el", func(c *sftp.Client) error { _, err := c.Lstat("/link"); return err }},
		{"realpath", "el", func(c *sftp.Client) error { _, err := c.RealPath("d/.."); return err }},
		{"opendir/readdir", "l", func(c *sftp.Client) error { _, err := c.ReadDir("/d"); return err }},
		{"readlink", "l", func(c *sftp.Client) error { _, err := c.ReadLink("/link"); return err }},
		{"open read", "r", func(c *sftp.Client) error {
			f, err := c.Open("/f")
			if err == nil {
				_, err = io.ReadAll(f)
				f.Close()
			}
			return err
		}},
		{"open write create", "w", func(c *sftp.Client) error {
			return writeAt(c, "/new", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, "x", 0)
		}},
		{"open write truncate", "w", func(c *sftp.Client) error {
			return writeAt(c, "/f", os.O_WRONLY|os.O_TRUNC, "x", 0)
		}},
		{"overwrite inside", "w", func(c *sftp.Client) error { return writeAt(c, "/f", os.O_WRONLY, "x", 3) }},
		{"open append", "a", func(c *sftp.Client) error {
			return writeAt(c, "/f", os.O_WRONLY|os.O_APPEND, "x", 0)
		}},
		{"write past the end", "aw", func(c *sftp.Client) error { return writeAt(c, "/f", os.O_WRONLY, "x", 10) }},
		{"open read-write", "w", func(c *sftp.Client) error { return writeAt(c, "/f", os.O_RDWR, "x", 0) }},
		{"remove", "d", func(c *sftp.Client) error { return c.Remove("/f") }},
		{"rmdir", "d", func(c *sftp.Client) error { return c.RemoveDirectory("/d") }},
		{"rename", "f", func(c *sftp.Client) error { return c.Rename("/f", "/g") }},
		{"posix-rename", "f", func(c *sftp.Client) error { return c.PosixRename("/f", "/d/f") }},
		{"mkdir", "m", func(c *sftp.Client) error { return c.Mkdir("/m") }},
		{"setstat mode", "M", func(c *sftp.Client) error { return c.Chmod("/f", 0o600) }},
		{"setstat times", "T", func(c *sftp.Client) error {
			return c.Chtimes("/f", time.Unix(1e9, 0), time.Unix(1e9, 0))
		}},
		{"setstat size", "w", func(c *sftp.Client) error { return c.Truncate("/f", 2) }},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/with", func(t *testing.T) {
			c, _, _ := serveDir(t, fixture(t), djangoclient.PermLetters)
			if err := tt.op(c); err != nil {
				t.Fatalf("with every letter: %v", err)
			}
		})
		t.Run(tt.name+"/without", func(t *testing.T) {
			perms := strings.Map(func(r rune) rune {
				if strings.ContainsRune(tt.letters, r) {
					return -1
				}
				return r
			}, djangoclient.PermLetters)
			dir := fixture(t)
			c, _, _ := serveDir(t, dir, perms)
			if err := tt.op(c); !errors.Is(err, os.ErrPermission) {
				t.Fatalf("without %q: err = %v, want permission denied", tt.letters, err)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "0123456789" {
				t.Fatalf("refused request changed the file: %q", b)
			}
			if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
				t.Fatal("refused request created a file")
			}
		})
	}
}

// TestAlwaysRefused: what no letter allows.
func TestAlwaysRefused(t *testing.T) {
	tests := []struct {
		name string
		op   func(c *sftp.Client) error
	}{
		{"symlink", func(c *sftp.Client) error { return c.Symlink("/f", "/s") }},
		{"hard link", func(c *sftp.Client) error { return c.Link("/f", "/h") }},
		{"chown", func(c *sftp.Client) error { return c.Chown("/f", 0, 0) }},
		{"readlink leaving the home", func(c *sftp.Client) error { _, err := c.ReadLink("/out"); return err }},
		{"readlink absolute", func(c *sftp.Client) error { _, err := c.ReadLink("/abs"); return err }},
		{"read through a link leaving the home", func(c *sftp.Client) error { _, err := c.Open("/out"); return err }},
		{"stat through an absolute link", func(c *sftp.Client) error { _, err := c.Stat("/abs"); return err }},
		{"remove the home", func(c *sftp.Client) error { return c.RemoveDirectory("/") }},
		{"a alone: write before the end", func(c *sftp.Client) error { return writeAt(c, "/f", os.O_WRONLY, "x", 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			perms := djangoclient.PermLetters
			if strings.HasPrefix(tt.name, "a alone") {
				perms = "elra"
			}
			dir := fixture(t)
			c, _, _ := serveDir(t, dir, perms)
			if err := tt.op(c); !errors.Is(err, os.ErrPermission) {
				t.Fatalf("err = %v, want permission denied", err)
			}
			if _, err := os.Lstat(filepath.Join(dir, "s")); err == nil {
				t.Fatal("symlink created")
			}
		})
	}
}

// TestTraversalStaysInHome: ".." and absolute paths stop at the home.
func TestTraversalStaysInHome(t *testing.T) {
	dir := fixture(t)
	outside := filepath.Join(filepath.Dir(dir), "outside-"+filepath.Base(dir))
	must(t, os.WriteFile(outside, []byte("secret"), 0o644))
	t.Cleanup(func() { os.Remove(outside) })
	c, _, _ := serveDir(t, dir, djangoclient.PermLetters)
	for _, p := range []string{"../" + filepath.Base(outside), "/../../" + filepath.Base(outside), "d/../../" + filepath.Base(outside)} {
		if _, err := c.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stat %q: err = %v, want not found (inside the home)", p, err)
		}
	}
	if err := writeAt(c, "../escape", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, "x", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "escape")); err != nil {
		t.Fatalf("../escape should land in the home: %v", err)
	}
	if p, err := c.RealPath("../../d"); err != nil || p != "/d" {
		t.Fatalf("realpath = %q, %v", p, err)
	}
}

// TestAtomicUpload: an upload cut before its close leaves the old file whole and no
// temporary file; a closed one replaces it; listings never show the temporary file.
func TestAtomicUpload(t *testing.T) {
	dir := fixture(t)
	c, u, cut := serveDir(t, dir, djangoclient.PermLetters)
	f, err := c.OpenFile("/f", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	must(t, err)
	_, err = f.Write([]byte("partial"))
	must(t, err)
	entries, err := c.ReadDir("/")
	must(t, err)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), uploadTempPrefix) {
			t.Errorf("listing shows %q", e.Name())
		}
	}
	cut()
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "0123456789" {
		t.Fatalf("aborted upload changed the file: %q", b)
	}
	assertNoTemp(t, dir)
	if got := u.eventTypes(); len(got) != 1 || got[0] != djangoclient.EventIncompleteFileReceived {
		t.Fatalf("events %v", got)
	}

	c, u, _ = serveDir(t, dir, djangoclient.PermLetters)
	must(t, writeAt(c, "/f", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, "whole", 0))
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "whole" {
		t.Fatalf("file = %q", b)
	}
	assertNoTemp(t, dir)
	if got := u.eventTypes(); len(got) != 1 || got[0] != djangoclient.EventFileReceived {
		t.Fatalf("events %v", got)
	}
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), uploadTempPrefix) {
			t.Errorf("temporary file %q left", e.Name())
		}
	}
}

// TestAppendAndResume: a alone appends (the append flag, or writes at the end).
func TestAppendAndResume(t *testing.T) {
	dir := fixture(t)
	c, _, _ := serveDir(t, dir, "elra")
	must(t, writeAt(c, "/f", os.O_WRONLY|os.O_APPEND, "AB", 0))
	must(t, writeAt(c, "/f", os.O_WRONLY, "CD", 12))
	// With the append flag, an offset past the old end is kept (OpenSSH's reput sends
	// them, and writes may run out of order).
	f, err := c.OpenFile("/f", os.O_WRONLY|os.O_APPEND)
	must(t, err)
	_, err = f.WriteAt([]byte("GH"), 16)
	must(t, err)
	_, err = f.WriteAt([]byte("EF"), 14)
	must(t, err)
	must(t, f.Close())
	if b, _ := os.ReadFile(filepath.Join(dir, "f")); string(b) != "0123456789ABCDEFGH" {
		t.Fatalf("file = %q", b)
	}
}

// TestEvents: each action reports its event with the path the user sees.
func TestEvents(t *testing.T) {
	c, u, _ := serveDir(t, fixture(t), djangoclient.PermLetters)
	must(t, c.Mkdir("/m"))
	must(t, c.Rename("/f", "/m/f"))
	f, err := c.Open("/m/f")
	must(t, err)
	_, _ = io.ReadAll(f)
	must(t, f.Close())
	must(t, c.Remove("/m/f"))
	must(t, c.RemoveDirectory("/m"))
	want := []string{djangoclient.EventDirectoryCreated, djangoclient.EventFileRenamed, djangoclient.EventFileSent,
		djangoclient.EventFileDeleted, djangoclient.EventDirectoryDeleted}
	if got := u.eventTypes(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if e := u.events[1]; *e.Path != "/f" || *e.ToPath != "/m/f" {
		t.Fatalf("rename event %+v", e)
	}
	if e := u.events[2]; *e.Bytes != 10 {
		t.Fatalf("sent event bytes %d", *e.Bytes)
	}
}

// TestRenameDoesNotReplace: SFTP rename refuses an existing target; posix-rename replaces.
func TestRenameDoesNotReplace(t *testing.T) {
	dir := fixture(t)
	must(t, os.WriteFile(filepath.Join(dir, "g"), []byte("g"), 0o640))
	c, _, _ := serveDir(t, dir, djangoclient.PermLetters)
	if err := c.Rename("/f", "/g"); err == nil {
		t.Fatal("rename replaced an existing file")
	}
	must(t, c.PosixRename("/f", "/g"))
	if b, _ := os.ReadFile(filepath.Join(dir, "g")); string(b) != "0123456789" {
		t.Fatalf("g = %q", b)
	}
}

var _ fs.FileInfo = renamed{}
