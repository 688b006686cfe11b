package ftpdriver

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// transferOn runs one data command on rc and returns the bytes read, the final reply
// code and, for uploads, sends payload.
func transferOn(t *testing.T, ts *testServer, rc *rawConn, cmd string, payload []byte) ([]byte, int) {
	t.Helper()
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("%s", cmd); err != nil {
		t.Fatal(err)
	}
	var data net.Conn
	code, msg := rc.read()
	if code != 150 {
		return nil, code
	}
	data = dial()
	var got []byte
	if payload != nil {
		if _, err := data.Write(payload); err != nil {
			t.Fatal(err)
		}
		data.Close()
	} else {
		got, _ = io.ReadAll(data)
	}
	code, msg = rc.read()
	_ = msg
	return got, code
}

func TestTypeAConvertsLineEnds(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	rc.cmd("TYPE A")
	if _, code := transferOn(t, ts, rc, "STOR win.txt", []byte("one\r\ntwo\r\nbare\rcr\r\n")); code != 226 {
		t.Fatalf("STOR in TYPE A = %d", code)
	}
	if disk, _ := os.ReadFile(filepath.Join(ts.home, "win.txt")); string(disk) != "one\ntwo\nbare\rcr\n" {
		t.Fatalf("stored %q, want LF line ends", disk)
	}
	if err := os.WriteFile(filepath.Join(ts.home, "unix.txt"), []byte("a\nb\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if got, code := transferOn(t, ts, rc, "RETR unix.txt", nil); code != 226 || string(got) != "a\r\nb\r\n" {
		t.Fatalf("RETR in TYPE A = %d %q, want CRLF line ends", code, got)
	}
	// RFC 3659 4: SIZE is what RETR would send, so in TYPE A with the CRs added.
	if code, msg := rc.cmd("SIZE unix.txt"); code != 213 || msg != "6" {
		t.Fatalf("SIZE in TYPE A = %d %q, want 213 6", code, msg)
	}
	big := filepath.Join(ts.home, "big.txt")
	if err := os.WriteFile(big, make([]byte, asciiSizeLimit+1), 0o640); err != nil {
		t.Fatal(err)
	}
	if code, _ := rc.cmd("SIZE big.txt"); code != 550 {
		t.Fatalf("SIZE in TYPE A of a file over the limit = %d, want 550", code)
	}
	if code, _ := rc.cmd("REST 1"); code != 350 {
		t.Fatal("REST refused")
	}
	if _, code := transferOn(t, ts, rc, "RETR unix.txt", nil); code != 554 {
		t.Fatalf("REST+RETR in TYPE A = %d, want 554", code)
	}
	rc.cmd("TYPE I")
	if got, code := transferOn(t, ts, rc, "RETR unix.txt", nil); code != 226 || string(got) != "a\nb\n" {
		t.Fatalf("RETR in TYPE I = %d %q, want the bytes unchanged", code, got)
	}
	if code, msg := rc.cmd("SIZE unix.txt"); code != 213 || msg != "4" {
		t.Fatalf("SIZE in TYPE I = %d %q", code, msg)
	}
}

func TestTypeAWithoutConversion(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.ASCIIConversion = false })
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	if err := os.WriteFile(filepath.Join(ts.home, "unix.txt"), []byte("a\nb\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	rc.cmd("TYPE A")
	if got, code := transferOn(t, ts, rc, "RETR unix.txt", nil); code != 226 || string(got) != "a\nb\n" {
		t.Fatalf("RETR = %d %q, want unchanged bytes", code, got)
	}
	if code, _ := rc.cmd("SIZE unix.txt"); code != 213 {
		t.Fatalf("SIZE = %d, want 213", code)
	}
}

// TestRESTMarkers: a marker past the end is 554 for RETR and STOR (RFC 1123 4.1.3.4,
// RFC 3659 5.3) and changes nothing; APPE after REST writes at the marker, as STOR.
func TestRESTMarkers(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	file := filepath.Join(ts.home, "f.bin")
	if err := os.WriteFile(file, []byte("abcdef"), 0o640); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		rest, cmd string
		payload   []byte
		wantCode  int
		wantDisk  string
	}{
		{"REST 7", "RETR f.bin", nil, 554, "abcdef"},
		{"REST 7", "STOR f.bin", []byte("zz"), 554, "abcdef"},
		{"REST 6", "RETR f.bin", nil, 226, "abcdef"}, // at the end: nothing to send
		{"REST 3", "APPE f.bin", []byte("XY"), 226, "abcXY"},
		{"REST 2", "STOR f.bin", []byte("Q"), 226, "abQ"},
	}
	for _, tt := range tests {
		if code, _ := rc.cmd("%s", tt.rest); code != 350 {
			t.Fatalf("%s refused", tt.rest)
		}
		_, code := transferOn(t, ts, rc, tt.cmd, tt.payload)
		disk, _ := os.ReadFile(file)
		if code != tt.wantCode || string(disk) != tt.wantDisk {
			t.Errorf("%s + %s = %d, file %q; want %d, %q", tt.rest, tt.cmd, code, disk, tt.wantCode, tt.wantDisk)
		}
	}
}

func TestAPPEAfterRESTNeedsWrite(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	ts.auth.grants["carol:carol-pw"] = ts.auth.grants["alice:alice-pw"]
	g := ts.auth.grants["carol:carol-pw"]
	g.Perms = "elra" // append, but no overwrite
	ts.auth.grants["carol:carol-pw"] = g
	rc := ts.dial(t)
	rc.login("carol", "carol-pw")
	file := filepath.Join(ts.home, "log.txt")
	if err := os.WriteFile(file, []byte("abcdef"), 0o640); err != nil {
		t.Fatal(err)
	}
	rc.cmd("REST 2")
	if _, code := transferOn(t, ts, rc, "APPE log.txt", []byte("X")); code != 550 {
		t.Fatalf("REST + APPE without w = %d, want 550", code)
	}
	if _, code := transferOn(t, ts, rc, "APPE log.txt", []byte("X")); code != 226 {
		t.Fatalf("APPE = %d", code)
	}
	if disk, _ := os.ReadFile(file); string(disk) != "abcdefX" {
		t.Fatalf("file = %q", disk)
	}
}
