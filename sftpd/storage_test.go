package sftpd

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/storage"
	"github.com/djftpd/djftpd/storage/storagetest"
)

// serveS3 is serveDir over a home in a real versitygw bucket: the user has no os.Root, only
// its storage.FS, as object-storage homes have.
func serveS3(t *testing.T, perms string) (*sftp.Client, *testUser, storage.FS) {
	c, u, h, _ := serveS3Metrics(t, perms)
	return c, u, h
}

// serveS3Metrics is serveS3 with the storage's metrics registry, to count S3 requests.
// Out-of-order reads wait for their turn up to a gap long enough (3 s, 12 times the
// production gap) that a loaded machine rarely turns the count of GETs into a timing test,
// and short enough that reads queued behind others that wait cost seconds, not minutes.
func serveS3Metrics(t *testing.T, perms string) (*sftp.Client, *testUser, storage.FS, *prometheus.Registry) {
	t.Helper()
	home, reg := s3Home(t)
	u := &testUser{perms: perms, fs: home}
	h := newHandlers(u, true, nil)
	h.FileGet.(*handlers).readGap = 3 * time.Second
	c, _ := servePipe(t, h)
	return c, u, home, reg
}

// s3Home is a fresh home /alice in a versitygw bucket.
func s3Home(t *testing.T) (storage.FS, *prometheus.Registry) {
	t.Helper()
	gw := storagetest.Start(t)
	gw.Env(t)
	reg := prometheus.NewRegistry()
	st, err := storage.NewS3(context.Background(), storage.Location{Kind: "s3", Bucket: storagetest.Bucket, Prefix: "sftp"},
		storage.S3Config{PathStyle: true, PartSize: storage.MinPartSize, Concurrency: 2, RenameDirMax: 100,
			HomeRoot: "/", Metrics: storage.NewMetrics(reg)})
	must(t, err)
	t.Cleanup(func() { st.Close() })
	home, err := st.Home(context.Background(), "/alice", true)
	must(t, err)
	return home, reg
}

// serveUser runs a request server with djftpd's handlers for u and returns its client.
func serveUser(t *testing.T, u User) *sftp.Client {
	t.Helper()
	c, _ := servePipe(t, newHandlers(u, true, nil))
	return c
}

// requests counts the storage's S3 requests of one operation so far.
func requests(t *testing.T, reg *prometheus.Registry, op string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	must(t, err)
	var n float64
	for _, mf := range mfs {
		if mf.GetName() != "djftpd_storage_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == op {
					n += m.GetCounter().GetValue()
				}
			}
		}
	}
	return n
}

var time0 = time.Unix(0, 0)

func readS3(t *testing.T, h storage.FS, name string) []byte {
	t.Helper()
	rc, err := h.Open(context.Background(), name, 0)
	must(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	must(t, err)
	return b
}

// TestS3Home: a home in object storage serves every request through storage.FS: a
// pipelined upload larger than a part (pkg/sftp's server may run its writes out of order),
// ranged reads, listing, mkdir, rename, remove, rmdir; what S3 cannot do is refused with
// SSH_FX_OP_UNSUPPORTED and a message (issue 16: SFTP on object-storage homes).
func TestS3Home(t *testing.T) {
	c, u, home, reg := serveS3Metrics(t, djangoclient.PermLetters)
	data := make([]byte, 3*storage.MinPartSize+12345)
	rand.Read(data)
	f, err := c.OpenFile("/big", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	must(t, err)
	if _, err := f.ReadFrom(bytes.NewReader(data)); err != nil {
		t.Fatalf("upload: %v", err)
	}
	must(t, f.Close())
	if got := readS3(t, home, "big"); !bytes.Equal(got, data) {
		t.Fatalf("stored %d bytes, want %d (equal: false)", len(got), len(data))
	}
	gets := requests(t, reg, "GetObject")
	r, err := c.Open("/big")
	must(t, err)
	var got bytes.Buffer
	if _, err := r.WriteTo(&got); err != nil { // pkg/sftp's concurrent reads
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("download: %d bytes, differ", got.Len())
	}
	// Reads the server's workers run out of order must not each cost a new GET.
	if n := requests(t, reg, "GetObject") - gets; n > 4 {
		t.Errorf("a download of %d bytes took %v GETs", len(data), n)
	}
	part := make([]byte, 100)
	_, err = r.ReadAt(part, 5*1024*1024+7)
	must(t, err)
	if !bytes.Equal(part, data[5*1024*1024+7:][:100]) {
		t.Fatal("ranged read differs")
	}
	must(t, r.Close())

	// pkg/sftp's Create opens read-write: the upload works, a read on the handle is refused.
	rw, err := c.Create("/rw")
	must(t, err)
	_, err = rw.Write([]byte("rw"))
	must(t, err)
	if _, err := rw.ReadAt(make([]byte, 2), 0); err == nil || !strings.Contains(err.Error(), "storage") {
		t.Errorf("read on an upload handle: %v, want refused naming the storage", err)
	}
	must(t, rw.Close())
	if got := string(readS3(t, home, "rw")); got != "rw" {
		t.Fatalf("rw = %q", got)
	}
	must(t, c.Remove("/rw"))
	must(t, c.Mkdir("/d"))
	must(t, c.Rename("/big", "/d/big2"))
	entries, err := c.ReadDir("/d")
	must(t, err)
	if len(entries) != 1 || entries[0].Name() != "big2" || entries[0].Size() != int64(len(data)) {
		t.Fatalf("listing %v", entries)
	}
	if fi, err := c.Stat("/d"); err != nil || !fi.IsDir() {
		t.Fatalf("stat dir: %v %v", fi, err)
	}
	if err := c.RemoveDirectory("/d"); err == nil {
		t.Fatal("rmdir of a non-empty directory succeeded")
	}
	must(t, c.Remove("/d/big2"))
	must(t, c.RemoveDirectory("/d"))
	if _, err := c.Stat("/d"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat after rmdir: %v", err)
	}
	want := []string{djangoclient.EventFileReceived, djangoclient.EventFileSent, djangoclient.EventFileReceived,
		djangoclient.EventFileDeleted, djangoclient.EventDirectoryCreated,
		djangoclient.EventFileRenamed, djangoclient.EventFileDeleted, djangoclient.EventDirectoryDeleted}
	if got := u.eventTypes(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
}

// TestS3Refusals: append, resume, in-place rewrite, chmod, times and truncation are not
// possible on S3: SSH_FX_OP_UNSUPPORTED with a message, and the object is untouched.
func TestS3Refusals(t *testing.T) {
	c, _, home := serveS3(t, djangoclient.PermLetters)
	must(t, writeAt(c, "/f", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, "0123456789", 0))
	unsupported := func(what string, err error) {
		t.Helper()
		var se *sftp.StatusError
		if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxOpUnsupported {
			t.Errorf("%s: %v, want SSH_FX_OP_UNSUPPORTED", what, err)
		} else if se.Error() == "" {
			t.Errorf("%s: no message", what)
		}
	}
	unsupported("append", writeAt(c, "/f", os.O_WRONLY|os.O_APPEND, "AB", 0))
	unsupported("resume", writeAt(c, "/f", os.O_WRONLY, "AB", 10))
	unsupported("chmod", c.Chmod("/f", 0o600))
	unsupported("chtimes", c.Chtimes("/f", time0, time0))
	unsupported("truncate", c.Truncate("/f", 2))
	unsupported("write far ahead", writeAt(c, "/g", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, "x", 1<<30))
	if got := string(readS3(t, home, "f")); got != "0123456789" {
		t.Fatalf("f = %q", got)
	}
	if _, err := home.Stat(context.Background(), "g"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused upload left g: %v", err)
	}
}

// memUpload is a storage.Upload into memory, for seqUpload's ordering alone.
type memUpload struct{ bytes.Buffer }

func (m *memUpload) Written() int64 { return int64(m.Len()) }
func (m *memUpload) Commit() error  { return nil }
func (m *memUpload) Abort() error   { return nil }

// TestSeqUploadOrder: writes arriving out of order within the window reach the upload in
// order; a rewrite or a write beyond the window is refused and fails the upload.
func TestSeqUploadOrder(t *testing.T) {
	chunk := func(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 4) }
	for _, tc := range []struct {
		name  string
		order []int64 // offsets, in chunks of 4 bytes
		whole bool
	}{
		{"in order", []int64{0, 1, 2, 3}, true},
		{"reversed", []int64{3, 2, 1, 0}, true},
		{"shuffled", []int64{1, 0, 3, 2}, true},
		{"rewrite", []int64{0, 1, 0}, false},
		{"hole", []int64{0, 2}, false},
		{"beyond the window", []int64{aheadWindow}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &memUpload{}
			s := &seqUpload{up: m}
			var want []byte
			for _, i := range tc.order {
				_, _ = s.WriteAt(chunk(int(i%20)), i*4)
			}
			if s.whole() != tc.whole {
				t.Fatalf("whole = %v, want %v", s.whole(), tc.whole)
			}
			if !tc.whole {
				return
			}
			for i := range tc.order {
				want = append(want, chunk(i)...)
			}
			if !bytes.Equal(m.Bytes(), want) {
				t.Fatalf("upload got %q, want %q", m.Bytes(), want)
			}
		})
	}
}

// TestS3Quota: on S3 homes too, exactly the quota fits, one byte more fails naming the quota
// and leaves no object; replacing a file is credited its old size.
func TestS3Quota(t *testing.T) {
	home, _ := s3Home(t)
	u := &quotaUser{testUser: &testUser{perms: djangoclient.PermLetters, fs: home}, limit: 10}
	c := serveUser(t, u)
	must(t, writeAt(c, "/exact", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, "0123456789", 0))
	if u.used != 10 || u.reserved != 0 {
		t.Fatalf("used %d reserved %d, want 10 0", u.used, u.reserved)
	}
	err := writeAt(c, "/over", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, "x", 0)
	var se *sftp.StatusError
	if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxFailure || !strings.Contains(err.Error(), "quota") {
		t.Fatalf("one byte over quota: %v, want SSH_FX_FAILURE naming the quota", err)
	}
	if _, err := home.Stat(context.Background(), "over"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an upload over quota left an object: %v", err)
	}
	must(t, writeAt(c, "/exact", os.O_WRONLY|os.O_TRUNC, "abcdefghij", 0))
	must(t, c.Remove("/exact"))
	if u.used != 0 || u.reserved != 0 {
		t.Fatalf("used %d reserved %d, want 0 0", u.used, u.reserved)
	}
}
