package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/djftpd/djftpd/storage"
	"github.com/djftpd/djftpd/storage/storagetest"
)

// readAheadHome is a home on a fresh versitygw with 5 MiB parts, 2 fetched ahead, and
// the registry its requests are counted in.
func readAheadHome(t *testing.T) (storage.FS, *prometheus.Registry, *storagetest.Server) {
	t.Helper()
	gw := storagetest.Start(t)
	gw.Env(t)
	reg := prometheus.NewRegistry()
	st, err := storage.NewS3(context.Background(), storage.Location{Kind: "s3", Bucket: storagetest.Bucket},
		storage.S3Config{PathStyle: true, PartSize: storage.MinPartSize, Concurrency: 2, HomeRoot: "/",
			Metrics: storage.NewMetrics(reg)})
	if err != nil {
		t.Fatal(err)
	}
	h, err := st.Home(context.Background(), "/alice", true)
	if err != nil {
		t.Fatal(err)
	}
	return h, reg, gw
}

// getObjects is how many GetObject requests the registry counted, any outcome.
func getObjects(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "djftpd_storage_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "operation" && l.GetValue() == "GetObject" {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return int(n)
}

// randomBytes is n bytes no two parts of which are alike, so a misplaced part shows.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// fetchGoroutines counts the goroutines running the read-ahead's part fetches.
func fetchGoroutines() int {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	return strings.Count(string(buf), "storage.(*s3Reader).fetch")
}

// TestS3ReadAheadContent: a read of 3.5 parts from several offsets is the object's
// bytes, in ranged GETs of one part each; an object of one part is one GET.
func TestS3ReadAheadContent(t *testing.T) {
	h, reg, _ := readAheadHome(t)
	const part = storage.MinPartSize
	data := randomBytes(part*3 + part/2)
	put(t, h, "big", data)
	put(t, h, "small", data[:part])
	for _, off := range []int64{0, 1, part - 1, part, part + 7, 2*part + 3, int64(len(data)) - 1, int64(len(data))} {
		before := getObjects(t, reg)
		if got := read(t, h, "big", off); got != string(data[off:]) {
			t.Errorf("read at %d: %d bytes, not the object's %d from there", off, len(got), len(data)-int(off))
		}
		if want := max(1, (len(data)-int(off)+part-1)/part); getObjects(t, reg)-before < want {
			t.Errorf("read at %d: %d GetObject, want %d (one a part)", off, getObjects(t, reg)-before, want)
		}
	}
	before := getObjects(t, reg)
	if got := read(t, h, "small", 0); got != string(data[:part]) {
		t.Error("one-part object: wrong bytes")
	}
	if n := getObjects(t, reg) - before; n != 1 {
		t.Errorf("one-part object: %d GetObject, want 1", n)
	}
}

// TestS3ReadAheadConcurrent: a reader that took one byte has made one GET (an early
// Close costs no more); with 1 MiB taken, the next Concurrency parts are requested at
// once (the reader fetches ahead), and Close leaves no fetch running.
func TestS3ReadAheadConcurrent(t *testing.T) {
	h, reg, _ := readAheadHome(t)
	put(t, h, "big", randomBytes(storage.MinPartSize*6))
	before := getObjects(t, reg)
	r, err := h.Open(context.Background(), "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if n := getObjects(t, reg) - before; n != 1 {
		t.Errorf("after one byte: %d GetObject, want 1", n)
	}
	if _, err := io.CopyN(io.Discard, r, 1<<20); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for getObjects(t, reg)-before < 3 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := getObjects(t, reg) - before; n != 3 {
		t.Errorf("after 1 MiB: %d GetObject, want 3 (the first part and 2 ahead)", n)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fetchGoroutines(); n != 0 {
		t.Errorf("%d part fetches still running after Close", n)
	}
}

// TestS3ReadAheadCloseMidway: Close while parts are in flight cancels them and
// returns only once their goroutines have ended.
func TestS3ReadAheadCloseMidway(t *testing.T) {
	h, _, _ := readAheadHome(t)
	put(t, h, "big", randomBytes(storage.MinPartSize*6))
	for _, n := range []int{0, 1, storage.MinPartSize + 3, storage.MinPartSize * 3} {
		r, err := h.Open(context.Background(), "big", 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(); err != nil {
			t.Fatal(err)
		}
		if g := fetchGoroutines(); g != 0 {
			t.Errorf("closed after %d bytes: %d part fetches still running", n, g)
		}
	}
}

// TestS3ReadAheadObjectReplaced: an object replaced during the read fails it (the
// later parts' If-Match), after bytes of the first object only.
func TestS3ReadAheadObjectReplaced(t *testing.T) {
	h, _, gw := readAheadHome(t)
	const part = storage.MinPartSize
	old := randomBytes(part * 6)
	put(t, h, "big", old)
	_, err := gw.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(storagetest.Bucket),
		Key: aws.String("alice/big"), IfMatch: aws.String(`"0123"`)})
	t.Logf("versitygw GetObject with a wrong If-Match: %v", err)
	r, err := h.Open(context.Background(), "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]byte, part)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	put(t, h, "big", bytes.Repeat([]byte{'y'}, len(old)))
	rest, err := io.ReadAll(r)
	got = append(got, rest...)
	t.Logf("after the replacement: %d bytes more, then %v", len(rest), err)
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("read of a replaced object: %v, want ErrUnavailable", err)
	}
	if !bytes.Equal(got, old[:len(got)]) {
		t.Error("bytes of the replacement were delivered")
	}
}

// TestS3ReadAheadPartFails: a part that cannot be fetched (the service gone) fails the
// read with ErrUnavailable once the bytes before it are delivered.
func TestS3ReadAheadPartFails(t *testing.T) {
	h, _, gw := readAheadHome(t)
	const part = storage.MinPartSize
	data := randomBytes(part * 6)
	put(t, h, "big", data)
	r, err := h.Open(context.Background(), "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make([]byte, part)
	if _, err := io.ReadFull(r, got); err != nil {
		t.Fatal(err)
	}
	gw.Stop()
	defer gw.Restart()
	rest, err := io.ReadAll(r)
	got = append(got, rest...)
	t.Logf("after the stop: %d bytes more, then %v", len(rest), err)
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Errorf("read with the service gone: %v, want ErrUnavailable", err)
	}
	if _, again := r.Read(make([]byte, 1)); again != err {
		t.Errorf("Read after the failure: %v, want the same error", again)
	}
	if !bytes.Equal(got, data[:len(got)]) || len(got) == len(data) {
		t.Errorf("%d bytes delivered: want a strict prefix of the object", len(got))
	}
}
