package ftpdriver

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMLSDAndMLST(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	rc.cmd("MKD sub")
	if err := os.WriteFile(filepath.Join(ts.home, "sub", "f.txt"), []byte("12345"), 0o640); err != nil {
		t.Fatal(err)
	}
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("MLSD sub"); err != nil {
		t.Fatal(err)
	}
	data := dial()
	rc.expect(150)
	listing, _ := io.ReadAll(data)
	rc.expect(226)
	lines := strings.Split(strings.TrimSpace(string(listing)), "\r\n")
	if len(lines) != 3 {
		t.Fatalf("MLSD lines = %q", lines)
	}
	for i, want := range []string{"type=cdir;", "type=pdir;", "type=file;size=5;"} {
		if !strings.HasPrefix(lines[i], want) || (i < 2 && !strings.HasSuffix(lines[i], []string{"; sub", "; .."}[i])) {
			t.Errorf("line %d = %q, want prefix %q", i, lines[i], want)
		}
	}
	if !strings.Contains(lines[2], ";perm=rwadf;") || !strings.Contains(lines[2], ";unique=") || !strings.HasSuffix(lines[2], "; f.txt") {
		t.Errorf("file facts = %q", lines[2])
	}
	code, msg := rc.cmd("MLST sub/f.txt")
	if code != 250 || !strings.Contains(msg, "\n type=file;size=5;") || !strings.Contains(msg, " /sub/f.txt\n") {
		t.Fatalf("MLST = %d %q", code, msg)
	}
	if code, msg := rc.cmd("OPTS MLST size;type;"); code != 200 || msg != "MLST OPTS type;size;" {
		t.Fatalf("OPTS MLST = %d %q", code, msg)
	}
	if _, msg := rc.cmd("MLST sub/f.txt"); !strings.Contains(msg, "\n type=file;size=5; /sub/f.txt") {
		t.Fatalf("MLST after OPTS = %q", msg)
	}
	if _, msg := rc.cmd("FEAT"); !strings.Contains(msg, "\n MLST type*;size*;modify;perm;unique;\n") {
		t.Fatalf("FEAT after OPTS MLST:\n%s", msg)
	}
}

func TestSTAT(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	_ = os.WriteFile(filepath.Join(ts.home, "a.txt"), []byte("a"), 0o640)
	if code, msg := rc.cmd("STAT"); code != 211 || !strings.Contains(msg, "logged in as alice") {
		t.Fatalf("STAT = %d %q", code, msg)
	}
	if code, msg := rc.cmd("STAT /"); code != 213 || !strings.Contains(msg, " a.txt") {
		t.Fatalf("STAT / = %d %q", code, msg)
	}
}

// TestMLSDConformance: RFC 3659 7 — MLSD of a file is 501, the cdir entry names the
// directory as given, and OPTS MLST applies to every entry.
func TestMLSDConformance(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	rc.cmd("MKD sub")
	if err := os.WriteFile(filepath.Join(ts.home, "sub", "f.txt"), []byte("12345"), 0o640); err != nil {
		t.Fatal(err)
	}
	dial := rc.epsvData(t, ts.addr)
	if code, msg := rc.cmd("MLSD sub/f.txt"); code != 501 {
		t.Fatalf("MLSD on a file = %d %q, want 501", code, msg)
	}
	_ = dial // the pending passive listener was closed with the refusal
	if code, msg := rc.cmd("OPTS MLST size;"); code != 200 || msg != "MLST OPTS size;" {
		t.Fatalf("OPTS MLST = %d %q", code, msg)
	}
	for _, arg := range []string{"sub", "/sub", "sub/"} {
		dial := rc.epsvData(t, ts.addr)
		if err := rc.tp.PrintfLine("MLSD %s", arg); err != nil {
			t.Fatal(err)
		}
		data := dial()
		rc.expect(150)
		listing, _ := io.ReadAll(data)
		rc.expect(226)
		lines := strings.Split(strings.TrimSuffix(string(listing), "\r\n"), "\r\n")
		want := []string{" " + arg, " ..", "size=5; f.txt"}
		if len(lines) != len(want) {
			t.Fatalf("MLSD %s = %q", arg, lines)
		}
		for i, w := range want {
			if lines[i] != w {
				t.Errorf("MLSD %s line %d = %q, want %q (only the size fact is on)", arg, i, lines[i], w)
			}
		}
	}
}
