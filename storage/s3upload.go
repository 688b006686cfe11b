package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// abortTimeout bounds the clean-up of a failed upload, done even when the command's
// context has ended.
const abortTimeout = 30 * time.Second

// Create starts a streamed upload. The object appears only at Commit: a small one by
// one PutObject, a large one as a multipart upload of PartSize parts, Concurrency in
// flight, so memory stays under PartSize × (Concurrency+1). Appending and writing
// from an offset are not possible on S3.
func (h *S3FS) Create(ctx context.Context, name string, o CreateOptions) (Upload, error) {
	key, err := objectKey(h.home, name)
	if err != nil {
		return nil, err
	}
	if o.Append || o.Offset > 0 {
		return nil, fmt.Errorf("append or resume: %w", ErrUnsupported)
	}
	if name == "." {
		return nil, fmt.Errorf("%s: %w", name, ErrIsDir)
	}
	if fi, err := h.Stat(ctx, name); err == nil && fi.IsDir() {
		return nil, fmt.Errorf("%s: %w", name, ErrIsDir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err := h.checkParent(ctx, name); err != nil {
		return nil, err
	}
	uctx, cancel := context.WithCancel(ctx)
	return &s3Upload{
		h: h, key: key, ctx: uctx, cancel: cancel,
		slots: make(chan struct{}, h.s.cfg.Concurrency),
		free:  make(chan []byte, h.s.cfg.Concurrency+1),
	}, nil
}

// s3Upload owns its part goroutines: Commit and Abort wait for every one.
type s3Upload struct {
	h      *S3FS
	key    string
	ctx    context.Context
	cancel context.CancelFunc
	buf    []byte // the part being filled
	n      int64
	id     *string // the multipart upload, once started
	next   int32   // number of the next part
	slots  chan struct{}
	free   chan []byte // buffers back from finished parts
	wg     sync.WaitGroup
	mu     sync.Mutex
	parts  []types.CompletedPart
	err    error // the first part that failed
	done   bool
}

func (u *s3Upload) Written() int64 { return u.n }

func (u *s3Upload) failed() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.err
}

func (u *s3Upload) Write(p []byte) (int, error) {
	if u.done {
		return 0, errors.New("write after commit or abort")
	}
	written := 0
	for len(p) > 0 {
		if err := u.failed(); err != nil {
			return written, err
		}
		if u.buf == nil {
			u.buf = u.newBuffer()
		}
		c := copy(u.buf[len(u.buf):cap(u.buf)], p)
		u.buf = u.buf[:len(u.buf)+c]
		p, written, u.n = p[c:], written+c, u.n+int64(c)
		if len(u.buf) == cap(u.buf) {
			if err := u.sendPart(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// newBuffer reuses a finished part's buffer, else allocates one. A slot is taken
// before a full buffer leaves, so at most Concurrency+1 buffers ever exist.
func (u *s3Upload) newBuffer() []byte {
	select {
	case b := <-u.free:
		return b[:0]
	default:
		return make([]byte, 0, u.h.s.cfg.PartSize)
	}
}

// sendPart hands the full buffer to a goroutine uploading it as the next part,
// starting the multipart upload first if needed.
func (u *s3Upload) sendPart() error {
	if u.id == nil {
		var out *s3.CreateMultipartUploadOutput
		err := u.h.call("CreateMultipartUpload", func() (err error) {
			out, err = u.h.s.client.CreateMultipartUpload(u.ctx, &s3.CreateMultipartUploadInput{Bucket: u.h.bucket(), Key: &u.key})
			return err
		})
		if err != nil {
			return err
		}
		u.id = out.UploadId
	}
	if u.next++; u.next > maxParts {
		return fmt.Errorf("upload larger than %d parts of DJFTPD_S3_PART_SIZE: %w", maxParts, ErrTooLarge)
	}
	select {
	case u.slots <- struct{}{}:
	case <-u.ctx.Done():
		if err := u.failed(); err != nil {
			return err // a part failed and cancelled the others: that is the cause
		}
		return u.ctx.Err()
	}
	buf, num := u.buf, u.next
	u.buf = nil
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		err := u.h.call("UploadPart", func() error {
			out, err := u.h.s.client.UploadPart(u.ctx, &s3.UploadPartInput{
				Bucket: u.h.bucket(), Key: &u.key, UploadId: u.id, PartNumber: aws.Int32(num),
				Body: bytes.NewReader(buf), ContentLength: aws.Int64(int64(len(buf))),
			})
			if err == nil {
				u.mu.Lock()
				u.parts = append(u.parts, types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.ETag})
				u.mu.Unlock()
			}
			return err
		})
		u.free <- buf
		<-u.slots
		if err != nil {
			u.mu.Lock()
			if u.err == nil {
				u.err = err
			}
			u.mu.Unlock()
			u.cancel() // the other parts are useless now
		}
	}()
	return nil
}

// Commit writes what is left and makes the object visible; on failure it aborts,
// so nothing is left behind.
func (u *s3Upload) Commit() error {
	if u.done {
		return errors.New("commit after commit or abort")
	}
	if u.id == nil {
		u.done = true
		defer u.cancel()
		body := u.buf
		return u.h.call("PutObject", func() error {
			_, err := u.h.s.client.PutObject(u.ctx, &s3.PutObjectInput{Bucket: u.h.bucket(), Key: &u.key,
				Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body)))})
			return err
		})
	}
	var err error
	if len(u.buf) > 0 {
		err = u.sendPart()
	}
	u.wg.Wait()
	if err == nil {
		err = u.failed()
	}
	if err != nil {
		return errors.Join(err, u.Abort())
	}
	u.done = true
	defer u.cancel()
	slices.SortFunc(u.parts, func(a, b types.CompletedPart) int { return int(aws.ToInt32(a.PartNumber) - aws.ToInt32(b.PartNumber)) })
	err = u.h.call("CompleteMultipartUpload", func() error {
		_, err := u.h.s.client.CompleteMultipartUpload(u.ctx, &s3.CompleteMultipartUploadInput{
			Bucket: u.h.bucket(), Key: &u.key, UploadId: u.id, MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts},
		})
		return err
	})
	if err != nil {
		u.done = false
		return errors.Join(err, u.Abort())
	}
	return nil
}

// Abort waits for the parts in flight and aborts the multipart upload, so no object
// and no pending upload remain.
func (u *s3Upload) Abort() error {
	if u.done {
		return nil
	}
	u.done = true
	// Parts in flight finish first (they are few, and fail fast if a part already
	// failed and cancelled the rest): a part cancelled mid-request may still complete
	// on the server after the abort and leave the upload pending.
	u.wg.Wait()
	u.cancel()
	u.buf = nil
	if u.id == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(u.ctx), abortTimeout)
	defer cancel()
	// A part cancelled here may still be finishing on the server and bring the upload
	// back after the abort (S3 documents aborting again): abort until it is gone.
	var err error
	for try := 0; try < abortTries; try++ {
		err = u.h.call("AbortMultipartUpload", func() error {
			_, err := u.h.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: u.h.bucket(), Key: &u.key, UploadId: u.id})
			return err
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if !u.pending(ctx) {
			return nil
		}
		time.Sleep(time.Duration(try+1) * 50 * time.Millisecond)
	}
	return fmt.Errorf("multipart upload %s of %s still pending after %d aborts", aws.ToString(u.id), u.key, abortTries)
}

// abortTries bounds the aborts of one multipart upload.
const abortTries = 5

// pending reports whether the multipart upload still exists (ListParts finds it).
func (u *s3Upload) pending(ctx context.Context) bool {
	err := u.h.call("ListParts", func() error {
		_, err := u.h.s.client.ListParts(ctx, &s3.ListPartsInput{Bucket: u.h.bucket(), Key: &u.key, UploadId: u.id, MaxParts: aws.Int32(1)})
		return err
	})
	return err == nil
}
