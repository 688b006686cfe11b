//go:build linux

package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
)

// TestTrimReleasesExePages: the trimmer's release takes the executable's pages out of the
// process's RSS (RssFile drops), and the sidecar keeps serving logins and transfers after
// it (the code it runs faults back in).
func TestTrimReleasesExePages(t *testing.T) {
	ftpAddr, _ := startSidecar(t)
	session := func(name string) {
		t.Helper()
		c, err := ftp.Dial(ftpAddr, ftp.DialWithTimeout(5*time.Second))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer func() { _ = c.Quit() }()
		if err := c.Login("alice", "pw"); err != nil {
			t.Fatalf("%s: login: %v", name, err)
		}
		if err := c.Stor(name+".txt", strings.NewReader("hello")); err != nil {
			t.Fatalf("%s: STOR: %v", name, err)
		}
	}
	session("before")
	before := statusKB(t, "RssFile")
	releaseExePages(discardLogger())
	after := statusKB(t, "RssFile")
	t.Logf("RssFile %d kB → %d kB", before, after)
	if after+1024 > before {
		t.Errorf("RssFile %d kB before the release, %d kB after: not 1 MiB less", before, after)
	}
	session("after")
}

// statusKB reads a "kB" field of /proc/self/status.
func statusKB(t *testing.T, key string) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/self/status", key)
	return 0
}
