package sftpd

import (
	"sync"

	"golang.org/x/crypto/ssh"
)

// batchReader hands pkg/sftp an SSH channel read in large gulps. pkg/sftp reads each packet
// with two or more small reads (its length, then its body), and x/crypto/ssh sends a window
// adjust, an SSH packet and a write(2), for every channel read once 96 KiB are unread on
// its side, which is all the time during an upload: two or three per 32 KiB written. One
// read into a buffer takes whatever has arrived, several packets at once. The buffer comes
// from a pool and goes back as soon as it is drained, and the read that waits for the next
// packet's length is made without it, so an idle session holds none.
type batchReader struct {
	ssh.Channel
	buf  *[]byte // nil when drained
	r, w int     // unread bytes: (*buf)[r:w]
	err  error   // the channel's error after the bytes in buf
}

// readBatch is the most one channel read takes; a few SFTP write packets of 32 KiB.
const readBatch = 128 << 10

// smallRead is the length read of pkg/sftp's recvPacket, made straight into its buffer.
const smallRead = 4

var readBatches = sync.Pool{New: func() any {
	b := make([]byte, readBatch)
	return &b
}}

func (b *batchReader) Read(p []byte) (int, error) {
	if b.buf == nil {
		if b.err != nil {
			return 0, b.err
		}
		if len(p) <= smallRead {
			return b.Channel.Read(p)
		}
		buf := readBatches.Get().(*[]byte)
		n, err := b.Channel.Read(*buf)
		if n == 0 {
			readBatches.Put(buf)
			return 0, err
		}
		b.buf, b.r, b.w, b.err = buf, 0, n, err
	}
	n := copy(p, (*b.buf)[b.r:b.w])
	b.r += n
	if b.r == b.w {
		readBatches.Put(b.buf)
		b.buf = nil
	}
	return n, nil
}

// buffered reports whether bytes read from the channel wait in b: a Read now returns at
// once.
func (b *batchReader) buffered() bool { return b.buf != nil }
