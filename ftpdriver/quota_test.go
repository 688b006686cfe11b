package ftpdriver

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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
