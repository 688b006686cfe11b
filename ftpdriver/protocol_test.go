package ftpdriver

import (
	"bytes"
	"crypto/md5" //nolint:gosec // checking HASH MD5
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestSTOU(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("STOU"); err != nil {
		t.Fatal(err)
	}
	data := dial()
	msg := rc.expect(150)
	name, ok := strings.CutPrefix(msg, "FILE: ")
	if !ok {
		t.Fatalf("150 text = %q, want FILE: <name>", msg)
	}
	_, _ = data.Write([]byte("unique"))
	data.Close()
	rc.expect(226)
	if b, _ := os.ReadFile(filepath.Join(ts.home, name)); string(b) != "unique" {
		t.Fatalf("%s = %q", name, b)
	}
}

func TestSITECHMODAndMFMT(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	p := filepath.Join(ts.home, "f.txt")
	_ = os.WriteFile(p, []byte("x"), 0o640)
	if code, _ := rc.cmd("SITE CHMOD 600 f.txt"); code != 200 {
		t.Fatalf("SITE CHMOD = %d", code)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v", fi.Mode())
	}
	for _, bad := range []string{"SITE CHMOD 999 f.txt", "SITE CHMOD 4755 f.txt", "SITE CHMOD 600"} {
		if code, _ := rc.cmd("%s", bad); code != 501 {
			t.Errorf("%s = %d, want 501", bad, code)
		}
	}
	if code, _ := rc.cmd("SITE EXEC ls"); code != 504 {
		t.Errorf("SITE EXEC = %d, want 504", code)
	}
	if code, msg := rc.cmd("MFMT 20200102030405 f.txt"); code != 213 || msg != "Modify=20200102030405; /f.txt" {
		t.Fatalf("MFMT = %d %q", code, msg)
	}
	if fi, _ := os.Stat(p); !fi.ModTime().Equal(time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("mtime = %v", fi.ModTime())
	}
	if code, msg := rc.cmd("MDTM f.txt"); code != 213 || msg != "20200102030405" {
		t.Fatalf("MDTM = %d %q", code, msg)
	}
}

func TestHASH(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	content := []byte("hash me, please")
	_ = os.WriteFile(filepath.Join(ts.home, "h.txt"), content, 0o640)
	sha := sha256.Sum256(content)
	md := md5.Sum(content) //nolint:gosec // test
	crc := crc32.ChecksumIEEE(content)
	tests := []struct{ algo, sum string }{
		{"SHA-256", hex.EncodeToString(sha[:])},
		{"MD5", hex.EncodeToString(md[:])},
		{"CRC32", fmt.Sprintf("%08x", crc)},
	}
	for _, tt := range tests {
		if code, _ := rc.cmd("OPTS HASH %s", tt.algo); code != 200 {
			t.Fatalf("OPTS HASH %s = %d", tt.algo, code)
		}
		want := fmt.Sprintf("%s 0-%d %s /h.txt", tt.algo, len(content), tt.sum)
		if code, msg := rc.cmd("HASH h.txt"); code != 213 || msg != want {
			t.Errorf("HASH = %d %q, want %q", code, msg, want)
		}
	}
	if code, _ := rc.cmd("OPTS HASH SHA-512"); code != 501 {
		t.Errorf("unknown algorithm accepted")
	}
}

// TestQuota: an upload over quota_bytes answers 552 and leaves the old file; AVBL
// reports what is left; deletes give space back.
func TestQuota(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	quota := int64(1000)
	g := ts.auth.grants["alice:alice-pw"]
	g.QuotaBytes = &quota
	ts.auth.grants["alice:alice-pw"] = g
	_ = os.MkdirAll(ts.home, 0o750)
	_ = os.WriteFile(filepath.Join(ts.home, "old.txt"), bytes.Repeat([]byte("o"), 300), 0o640)

	c := ts.client(t, "alice", "alice-pw")
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	if code, msg := rc.cmd("AVBL"); code != 213 || msg != "700" {
		t.Fatalf("AVBL = %d %q, want 700", code, msg)
	}
	// Replacing old.txt frees its 300 bytes: 1000 fit, 1001 do not.
	if err := c.Stor("old.txt", bytes.NewReader(bytes.Repeat([]byte("n"), 1001))); err == nil || !strings.Contains(err.Error(), "552") {
		t.Fatalf("STOR over quota: %v, want 552", err)
	}
	if b, _ := os.ReadFile(filepath.Join(ts.home, "old.txt")); len(b) != 300 || b[0] != 'o' {
		t.Fatalf("old.txt changed by a refused upload: %d bytes", len(b))
	}
	if err := c.Append("old.txt", bytes.NewReader(bytes.Repeat([]byte("a"), 701))); err == nil {
		t.Fatal("APPE over quota succeeded")
	}
	if fi, _ := os.Stat(filepath.Join(ts.home, "old.txt")); fi.Size() != 300 {
		t.Fatalf("old.txt is %d bytes after a refused APPE, want 300", fi.Size())
	}
	if err := c.Stor("new.txt", bytes.NewReader(bytes.Repeat([]byte("n"), 700))); err != nil {
		t.Fatal(err)
	}
	if code, msg := rc.cmd("AVBL"); code != 213 || msg != "0" {
		t.Fatalf("AVBL = %d %q, want 0", code, msg)
	}
	if err := c.Delete("old.txt"); err != nil {
		t.Fatal(err)
	}
	if code, msg := rc.cmd("AVBL"); msg != "300" {
		t.Fatalf("AVBL after delete = %d %q, want 300", code, msg)
	}
	entries, _ := os.ReadDir(ts.home)
	if len(entries) != 1 {
		t.Fatalf("home has %d entries, want only new.txt", len(entries))
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
