package ftpdriver

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/djftpd/djftpd/storage"
	"github.com/djftpd/djftpd/storage/storagetest"
)

// s3TestServer is newTestServer with homes in a versitygw bucket under the prefix
// "ftp": alice's home (ts.home) is the keys ftp<ts.home>/...
type s3TestServer struct {
	*testServer
	gw *storagetest.Server
}

func newS3TestServer(t *testing.T) *s3TestServer {
	t.Helper()
	gw := storagetest.Start(t)
	gw.Env(t)
	st, err := storage.NewS3(context.Background(), storage.Location{Kind: "s3", Bucket: storagetest.Bucket, Prefix: "ftp"},
		storage.S3Config{PathStyle: true, PartSize: storage.MinPartSize, Concurrency: 2, HomeRoot: "/",
			Metrics: storage.NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, func(c *Config) { c.Storage = st; c.HomeRoot = "/" })
	return &s3TestServer{testServer: ts, gw: gw}
}

// object is the content of a key of alice's home, or an error.
func (ts *s3TestServer) object(name string) ([]byte, error) {
	out, err := ts.gw.Client().GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String(storagetest.Bucket), Key: aws.String("ftp" + ts.home + "/" + name)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func (ts *s3TestServer) pendingUploads(t *testing.T) int {
	t.Helper()
	out, err := ts.gw.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(storagetest.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

func TestS3HomeCommands(t *testing.T) {
	ts := newS3TestServer(t)
	c := ts.client(t, "alice", "alice-pw")
	data := make([]byte, 11<<20+17) // three parts of 5 MiB
	_, _ = rand.Read(data)
	if err := c.Stor("big.bin", bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	if got, err := ts.object("big.bin"); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("object in the bucket: %d bytes, %v", len(got), err)
	}
	r, err := c.RetrFrom("big.bin", 5)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, data[5:]) {
		t.Fatalf("RETR from 5: %d bytes, %v", len(got), err)
	}
	if size, err := c.FileSize("big.bin"); err != nil || size != int64(len(data)) {
		t.Fatalf("SIZE = %d, %v", size, err)
	}
	if _, err := c.GetTime("big.bin"); err != nil {
		t.Fatalf("MDTM: %v", err)
	}
	for _, step := range []func() error{
		func() error { return c.MakeDir("d") },
		func() error { return c.ChangeDir("d") },
		func() error { return c.Stor("a.txt", strings.NewReader("a")) },
		func() error { return c.ChangeDirToParent() },
		func() error { return c.Rename("big.bin", "d/big2.bin") },
		func() error { return c.Rename("d", "e") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	names, err := c.NameList("/e")
	slices.Sort(names)
	if err != nil || !slices.Equal(names, []string{"a.txt", "big2.bin"}) {
		t.Fatalf("NLST /e = %q, %v", names, err)
	}
	entries, err := c.List("/") // MLSD
	if err != nil || len(entries) != 2 || entries[1].Name != "e" {
		t.Fatalf("MLSD / = %+v, %v", entries, err)
	}
	if err := c.RemoveDir("e"); err == nil || !strings.Contains(err.Error(), "550") {
		t.Fatalf("RMD of a non-empty directory: %v, want 550", err)
	}
	for _, f := range []string{"e/a.txt", "e/big2.bin"} {
		if err := c.Delete(f); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.RemoveDir("e"); err != nil {
		t.Fatal(err)
	}
	if names, err := c.NameList("/"); err != nil || len(names) != 0 {
		t.Fatalf("home after clean-up: %q, %v", names, err)
	}
	if n := ts.pendingUploads(t); n != 0 {
		t.Fatalf("%d multipart uploads left pending", n)
	}
}

// TestS3RefusesWhatObjectsCannotDo: APPE, REST+STOR, MFMT and SITE CHMOD get 550 with
// the reason, before any data connection; FEAT and the perm fact do not offer them.
func TestS3RefusesWhatObjectsCannotDo(t *testing.T) {
	ts := newS3TestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	c := ts.client(t, "alice", "alice-pw")
	if err := c.Stor("f.txt", strings.NewReader("hello")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ line, why string }{
		{"APPE f.txt", "APPE not supported on object storage: an object cannot be appended to"},
		{"REST 2|STOR f.txt", "STOR not supported on object storage: an object is written whole"},
		{"MFMT 20200101000000 f.txt", "MFMT not supported on object storage"},
		{"SITE CHMOD 600 f.txt", "SITE CHMOD not supported on object storage: objects have no permission bits"},
	} {
		cmds := strings.Split(tc.line, "|")
		for _, cmd := range cmds[:len(cmds)-1] {
			rc.cmd("%s", cmd)
		}
		code, msg := rc.cmd("%s", cmds[len(cmds)-1])
		if code != 550 || !strings.Contains(msg, tc.why) {
			t.Errorf("%s: %d %s, want 550 %s", tc.line, code, msg, tc.why)
		}
	}
	if got, _ := ts.object("f.txt"); string(got) != "hello" {
		t.Errorf("f.txt = %q after the refusals", got)
	}
	_, feat := rc.cmd("FEAT")
	if strings.Contains(feat, "MFMT") {
		t.Errorf("FEAT offers MFMT on S3:\n%s", feat)
	}
	if _, mlst := rc.cmd("MLST f.txt"); !strings.Contains(mlst, "perm=rwdf;") {
		t.Errorf("MLST perm fact on S3 (no append): %s", mlst)
	}
}

// TestS3UnavailableIs451: with the S3 server down, commands answer 451 at once (no
// hang, no half-visible file); when it is back, the same session works again.
func TestS3UnavailableIs451(t *testing.T) {
	ts := newS3TestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	if code, msg := rc.cmd("MKD d"); code != 257 {
		t.Fatalf("MKD = %d %s", code, msg)
	}
	ts.gw.Stop()
	_ = rc.c.SetDeadline(time.Now().Add(time.Minute))
	start := time.Now()
	for _, line := range []string{"SIZE d/x", "MKD e", "DELE x", "RMD d", "CWD d"} {
		code, msg := rc.cmd("%s", line)
		if code != 451 || !strings.Contains(msg, "Storage unavailable") {
			t.Errorf("%s with S3 down: %d %s, want 451 Storage unavailable", line, code, msg)
		}
	}
	if d := time.Since(start); d > 20*time.Second { // retries wait at most 1s each
		t.Errorf("five commands with S3 down took %v", d)
	}
	if err := ts.gw.Restart(); err != nil {
		t.Fatal(err)
	}
	if code, msg := rc.cmd("CWD d"); code != 250 {
		t.Fatalf("CWD after S3 came back: %d %s", code, msg)
	}
}

// TestS3ClientKilledMidUpload: a client that vanishes mid-upload leaves no object and
// no pending multipart upload.
func TestS3ClientKilledMidUpload(t *testing.T) {
	ts := newS3TestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("STOR half.bin"); err != nil {
		t.Fatal(err)
	}
	c := dial()
	rc.expect(150)
	if _, err := c.Write(bytes.Repeat([]byte("x"), 12<<20)); err != nil { // two parts sent
		t.Fatal(err)
	}
	for wait := time.Now().Add(10 * time.Second); ts.pendingUploads(t) == 0; {
		if time.Now().After(wait) {
			t.Fatal("the upload never started a multipart upload")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = c.(*net.TCPConn).SetLinger(0) // RST: the client died, the upload is not complete
	c.Close()
	rc.c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for ts.pendingUploads(t) != 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := ts.pendingUploads(t); n != 0 {
		t.Fatalf("%d multipart uploads pending after the client died", n)
	}
	if _, err := ts.object("half.bin"); err == nil || !strings.Contains(err.Error(), "NoSuchKey") {
		t.Fatalf("half.bin: %v, want no object", err)
	}
}

// TestS3QuotaAndAVBL: usage on S3 is summed by listing at login and kept up by
// uploads; AVBL answers from the quota, and says why without one.
func TestS3QuotaAndAVBL(t *testing.T) {
	ts := newS3TestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	if code, msg := rc.cmd("AVBL"); code != 550 || !strings.Contains(msg, "object storage has no fixed size") {
		t.Fatalf("AVBL without quota: %d %s", code, msg)
	}
	if _, err := ts.gw.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(storagetest.Bucket),
		Key: aws.String("ftp" + ts.home + "/old.bin"), Body: bytes.NewReader(make([]byte, 300))}); err != nil {
		t.Fatal(err)
	}
	ts.withQuota(1000)
	c := ts.client(t, "alice", "alice-pw")
	if err := c.Stor("new.bin", bytes.NewReader(make([]byte, 200))); err != nil {
		t.Fatal(err)
	}
	rc2 := ts.dial(t)
	rc2.login("alice", "alice-pw")
	if code, msg := rc2.cmd("AVBL"); code != 213 || msg != "500" {
		t.Fatalf("AVBL with 1000 quota, 500 used: %d %s", code, msg)
	}
	if err := c.Stor("over.bin", bytes.NewReader(make([]byte, 600))); err == nil || !strings.Contains(err.Error(), "552") {
		t.Fatalf("upload over quota: %v, want 552", err)
	}
	if _, err := ts.object("over.bin"); err == nil {
		t.Fatal("an upload over quota left an object")
	}
}

// TestS3DownMidTransferIs451: S3 stopping during a STOR fails the transfer with 451 (no
// object appears); once S3 is back, the next upload works.
func TestS3DownMidTransferIs451(t *testing.T) {
	ts := newS3TestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	_ = rc.c.SetDeadline(time.Now().Add(time.Minute))
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("STOR cut.bin"); err != nil {
		t.Fatal(err)
	}
	c := dial()
	rc.expect(150)
	if _, err := c.Write(bytes.Repeat([]byte("x"), 6<<20)); err != nil { // the first part
		t.Fatal(err)
	}
	ts.gw.Stop()
	// The next parts fail; the server stops reading, so this write may block or fail.
	go func() {
		_, _ = c.Write(bytes.Repeat([]byte("y"), 16<<20))
		c.Close()
	}()
	if code, msg := rc.read(); code != 451 || !strings.Contains(msg, "Storage unavailable") {
		t.Fatalf("STOR with S3 gone: %d %s, want 451 Storage unavailable", code, msg)
	}
	c.Close()
	if err := ts.gw.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.object("cut.bin"); err == nil {
		t.Fatal("the cut upload left an object")
	}
	cl := ts.client(t, "alice", "alice-pw")
	if err := cl.Stor("after.bin", strings.NewReader("back")); err != nil {
		t.Fatalf("STOR after S3 came back: %v", err)
	}
}

// TestS3LiveSessionShowsProgress: a transfer to S3 has no file offset to read, so its
// bytes are counted; the live session shows them as for a local home.
func TestS3LiveSessionShowsProgress(t *testing.T) {
	ts := newS3TestServer(t)
	startUpload(t, ts.testServer, "live.bin", strings.Repeat("x", 4096))
	waitFor(t, "the S3 upload's first 4096 bytes in the live session", func() bool {
		m := sessionsOf(t, ts.testServer)
		return len(m["alice"]) == 1 && m["alice"][0].Transfer != nil && m["alice"][0].Transfer.Bytes == 4096
	})
}
