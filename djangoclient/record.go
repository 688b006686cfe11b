package djangoclient

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// A spool record frames one encoded event so that a write torn by a crash is detected:
//
//	4 bytes  payload length, big-endian (1..maxLineBytes)
//	4 bytes  CRC-32C (Castagnoli) of the payload, big-endian
//	payload  the event's JSON and '\n'
//
// A reader trusts nothing after the first record that is short or fails its checksum: the
// framing of what follows is unknown.

const recordHeaderBytes = 8

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errTornRecord marks a record cut short (a crash mid-append); errCorruptRecord one whose
// header or checksum is wrong.
var (
	errTornRecord    = errors.New("record cut short (torn write)")
	errCorruptRecord = errors.New("record checksum or length wrong")
)

// appendRecord appends the record of payload to buf.
func appendRecord(buf, payload []byte) []byte {
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(payload)))
	buf = binary.BigEndian.AppendUint32(buf, crc32.Checksum(payload, castagnoli))
	return append(buf, payload...)
}

// recordLen is the size on disk of the record of payload.
func recordLen(payload []byte) int64 { return int64(recordHeaderBytes + len(payload)) }

// recordReader reads records; it never holds more than one payload (maxLineBytes).
type recordReader struct {
	r   *bufio.Reader
	hdr [recordHeaderBytes]byte // here, not on next's stack, whence io.ReadFull moved it to the heap
	buf []byte
}

func newRecordReader(r io.Reader) *recordReader {
	return &recordReader{r: bufio.NewReaderSize(r, 32<<10)}
}

// reset makes rr read from r, keeping its buffers.
func (rr *recordReader) reset(r io.Reader) { rr.r.Reset(r) }

// next returns the next record's payload (valid until the next call) and its size on disk;
// io.EOF at a clean end, errTornRecord or errCorruptRecord for damage, or a read error.
func (rr *recordReader) next() ([]byte, int64, error) {
	hdr := rr.hdr[:]
	switch _, err := io.ReadFull(rr.r, hdr); {
	case err == io.EOF:
		return nil, 0, io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, 0, errTornRecord
	case err != nil:
		return nil, 0, fmt.Errorf("read spool record: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n == 0 || int64(n) > int64(maxLineBytes) {
		return nil, 0, errCorruptRecord
	}
	if cap(rr.buf) < int(n) {
		rr.buf = make([]byte, n)
	}
	rr.buf = rr.buf[:n]
	switch _, err := io.ReadFull(rr.r, rr.buf); {
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF):
		return nil, 0, errTornRecord
	case err != nil:
		return nil, 0, fmt.Errorf("read spool record: %w", err)
	}
	if crc32.Checksum(rr.buf, castagnoli) != binary.BigEndian.Uint32(hdr[4:]) {
		return nil, 0, errCorruptRecord
	}
	return rr.buf, int64(recordHeaderBytes) + int64(n), nil
}
