package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Reads of more than one part fetch ahead: the first ranged GET streams to the
// reader while up to Concurrency further parts of PartSize are fetched at once
// into buffers, so one transfer holds at most PartSize × Concurrency in memory.
// One streamed GET is held back by a single connection's throughput; the SDK's
// transfer manager downloads with concurrent ranged parts the same way.

// readAheadAfter is how much of the first part a reader takes before the parts after
// it are requested: a reader that is closed early (the SFTP server reopens the object
// at another offset when its workers read out of order; ABOR) then costs one GET, as
// before the read-ahead, not a part size × concurrency of GETs it will not read.
const readAheadAfter = 1 << 20

// s3Part is one ranged GET in flight: done is closed once buf holds n bytes or err
// is set.
type s3Part struct {
	off, n int64
	buf    []byte
	err    error
	done   chan struct{}
}

// s3Reader delivers an object strictly in order from concurrent ranged GETs. It is
// used by one goroutine at a time (Read, then Close), as io.ReadCloser allows.
type s3Reader struct {
	h      *S3FS
	key    string
	etag   string // If-Match of every later part: a replaced object fails the read
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the part goroutines

	first   io.ReadCloser // the first response's body, streamed; nil once drained
	taken   int64         // bytes delivered from first
	cur     *s3Part       // the part being read; pos bytes of it delivered
	pos     int64
	queue   []*s3Part // parts in flight, in order
	free    [][]byte  // buffers of drained parts, reused
	next    int64     // offset of the next part to start
	end     int64     // the object's size
	size    int64     // part size
	ahead   int       // parts in flight at most
	failed  error     // the first part's failure, reported in place of cancellations
	failMu  sync.Mutex
	err     error // what ended the read: every later Read returns it
	stopped bool
}

// newS3Reader takes over the first response (bytes [offset, offset+size) of an
// object of end bytes) and starts fetching what follows it.
func newS3Reader(ctx context.Context, h *S3FS, key, etag string, body io.ReadCloser, offset, end int64) *s3Reader {
	r := &s3Reader{h: h, key: key, etag: etag, first: &s3Body{rc: body, op: "GetObject"},
		next: offset + h.s.cfg.PartSize, end: end, size: h.s.cfg.PartSize, ahead: h.s.cfg.Concurrency}
	r.ctx, r.cancel = context.WithCancel(ctx)
	return r
}

// fill starts parts until ahead are in flight or the object is covered.
func (r *s3Reader) fill() {
	for len(r.queue) < r.ahead && r.next < r.end {
		p := &s3Part{off: r.next, n: min(r.size, r.end-r.next), done: make(chan struct{})}
		if k := len(r.free); k > 0 {
			p.buf, r.free = r.free[k-1][:p.n], r.free[:k-1]
		} else {
			p.buf = make([]byte, p.n, r.size)
		}
		r.next += p.n
		r.queue = append(r.queue, p)
		r.wg.Add(1)
		go r.fetch(p)
	}
}

// fetch fills one part; its first failure cancels the parts after it.
func (r *s3Reader) fetch(p *s3Part) {
	defer r.wg.Done()
	defer close(p.done)
	p.err = r.get(p)
	if p.err != nil && r.ctx.Err() == nil {
		r.failMu.Lock()
		if r.failed == nil {
			r.failed = p.err
		}
		r.failMu.Unlock()
		r.cancel()
	}
}

func (r *s3Reader) get(p *s3Part) error {
	in := &s3.GetObjectInput{Bucket: r.h.bucket(), Key: &r.key, IfMatch: aws.String(r.etag),
		Range: aws.String(fmt.Sprintf("bytes=%d-%d", p.off, p.off+p.n-1))}
	var out *s3.GetObjectOutput
	if err := r.h.call("GetObject", func() (err error) { out, err = r.h.s.client.GetObject(r.ctx, in); return err }); err != nil {
		return err
	}
	defer out.Body.Close()
	if got := aws.ToString(out.ETag); got != r.etag { // in case If-Match is ignored
		return &s3Error{op: "GetObject", code: "ETagChanged", class: ErrUnavailable,
			err: fmt.Errorf("object replaced during the read (ETag %s, then %s)", r.etag, got)}
	}
	if _, err := io.ReadFull(out.Body, p.buf); err != nil {
		return &s3Error{op: "GetObject", code: "stream", class: ErrUnavailable, err: err}
	}
	return nil
}

func (r *s3Reader) Read(b []byte) (int, error) {
	if r.stopped {
		return 0, errors.New("read after close")
	}
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.read(b)
	if err != nil {
		r.err = err
		r.cancel() // nothing after a failure is delivered: stop fetching it
	}
	return n, err
}

func (r *s3Reader) read(b []byte) (int, error) {
	if r.first != nil {
		n, err := r.first.Read(b)
		if r.taken += int64(n); r.taken >= readAheadAfter {
			r.fill()
		}
		if !errors.Is(err, io.EOF) {
			return n, err
		}
		r.first.Close()
		r.first = nil
		if n > 0 {
			return n, nil
		}
	}
	for r.cur == nil || r.pos == r.cur.n {
		if err := r.advance(); err != nil {
			return 0, err
		}
	}
	n := copy(b, r.cur.buf[r.pos:r.cur.n])
	r.pos += int64(n)
	return n, nil
}

// advance recycles the drained part and waits for the next one.
func (r *s3Reader) advance() error {
	if r.cur != nil {
		r.free = append(r.free, r.cur.buf)
		r.cur = nil
	}
	r.fill()
	if len(r.queue) == 0 {
		return io.EOF
	}
	p := r.queue[0]
	r.queue = r.queue[1:]
	<-p.done
	if p.err != nil {
		r.failMu.Lock()
		err := r.failed
		r.failMu.Unlock()
		if err == nil {
			err = p.err
		}
		return err
	}
	r.cur, r.pos = p, 0
	return nil
}

// Close cancels the parts in flight and waits for their goroutines.
func (r *s3Reader) Close() error {
	if r.stopped {
		return nil
	}
	r.stopped = true
	r.cancel()
	if r.first != nil {
		r.first.Close()
	}
	r.wg.Wait()
	r.queue, r.free, r.cur = nil, nil, nil
	return nil
}

// objectSize is the total of a Content-Range "bytes a-b/total", -1 if unknown.
func objectSize(contentRange string) int64 {
	_, total, ok := strings.Cut(contentRange, "/")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(total, 10, 64)
	if err != nil {
		return -1
	}
	return n
}
