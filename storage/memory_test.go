package storage_test

import (
	"bytes"
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/djftpd/djftpd/storage"
	"github.com/djftpd/djftpd/storage/storagetest"
)

// rssBytes is this process's resident set size (Linux).
func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Skip("no VmRSS")
	return 0
}

// TestS3UploadMemoryBounded: a 1 GiB upload with the default part size and concurrency
// grows the process by less than 64 MiB (parts are sent as they fill: part size ×
// (concurrency+1) at most, 40 MiB).
func TestS3UploadMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("1 GiB upload")
	}
	gw := storagetest.Start(t)
	gw.Env(t)
	st, err := storage.NewS3(context.Background(), storage.Location{Kind: "s3", Bucket: storagetest.Bucket},
		storage.S3Config{PathStyle: true, HomeRoot: "/", Metrics: storage.NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	h, err := st.Home(context.Background(), "/alice", true)
	if err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	before := rssBytes(t)
	u, err := h.Create(context.Background(), "big", storage.CreateOptions{Atomic: true})
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte{'x'}, 1<<20)
	peak := before
	for range 1024 {
		if _, err := u.Write(chunk); err != nil {
			t.Fatal(err)
		}
		peak = max(peak, rssBytes(t))
	}
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	fi, err := h.Stat(context.Background(), "big")
	if err != nil || fi.Size() != 1<<30 {
		t.Fatalf("Stat = %v, %v", fi, err)
	}
	growth := peak - before
	t.Logf("RSS %d MiB before, peak %d MiB: growth %d MiB for 1 GiB", before>>20, peak>>20, growth>>20)
	if limit := int64(64 << 20); growth > limit && !raceEnabled {
		t.Fatalf("RSS grew %d MiB uploading 1 GiB, want under %d MiB", growth>>20, limit>>20)
	}
}
