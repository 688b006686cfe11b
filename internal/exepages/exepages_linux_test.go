//go:build linux

package exepages

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestReleaseDropsRssFile releases the test binary's own pages: RssFile drops, and the code
// that runs after (this test's) faults back in.
func TestReleaseDropsRssFile(t *testing.T) {
	before := rssFile(t)
	res, err := Release()
	if err != nil {
		t.Fatal(err)
	}
	after := rssFile(t)
	t.Logf("RssFile %d → %d kB; %+v", before>>10, after>>10, res)
	if res.Mappings == 0 || res.Bytes == 0 {
		t.Fatalf("nothing released: %+v", res)
	}
	if after >= before {
		t.Errorf("RssFile %d kB before, %d kB after", before>>10, after>>10)
	}
}

// rssFile reads RssFile from /proc/self/status, in bytes.
func rssFile(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n << 10
		}
	}
	t.Fatal("no RssFile in /proc/self/status")
	return 0
}

// BenchmarkRelease: one release (read and parse smaps, madvise), without the faults that
// bring back what the process runs next.
func BenchmarkRelease(b *testing.B) {
	for b.Loop() {
		if _, err := Release(); err != nil {
			b.Fatal(err)
		}
	}
}
