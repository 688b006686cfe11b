package ftpdriver

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
