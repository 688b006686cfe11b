package ftpdriver

import (
	"bufio"
	"io"
)

// TYPE A (RFC 959 3.1.1.1): on the wire every line ends in CRLF; on disk in LF, the
// platform's line end. The readers below convert a stream either way whatever the
// chunking; TYPE I transfers never go through them, so they keep sendfile and splice.

// toNetASCII turns each bare LF of r into CRLF (RETR in TYPE A). An LF already behind a
// CR is left alone, so a file that has CRLF line ends is sent as it is.
type toNetASCII struct {
	r      *bufio.Reader
	lastCR bool // the byte before the next one read was a CR
	lfDue  bool // a CR was emitted for an LF whose LF is still to come
}

func newToNetASCII(r io.Reader) *toNetASCII { return &toNetASCII{r: bufio.NewReader(r)} }

func (t *toNetASCII) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if t.lfDue {
			p[n] = '\n'
			n++
			t.lfDue = false
			continue
		}
		b, err := t.r.ReadByte()
		if err != nil {
			return n, err
		}
		if b == '\n' && !t.lastCR {
			p[n] = '\r'
			n++
			t.lfDue = true
			t.lastCR = false
			continue
		}
		p[n] = b
		n++
		t.lastCR = b == '\r'
		if t.r.Buffered() == 0 && n > 0 {
			return n, nil // do not block for more while holding bytes to give
		}
	}
	return n, nil
}

// fromNetASCII turns each CRLF of r into LF (STOR and APPE in TYPE A). A CR not
// followed by LF is kept; a CR at the end of what has arrived waits for the next byte.
type fromNetASCII struct {
	r       *bufio.Reader
	pending bool // a CR was read and not yet written
}

func newFromNetASCII(r io.Reader) *fromNetASCII { return &fromNetASCII{r: bufio.NewReader(r)} }

func (f *fromNetASCII) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		b, err := f.r.ReadByte()
		if err != nil {
			if f.pending { // the stream ended on a CR: keep it
				p[n] = '\r'
				n++
				f.pending = false
			}
			if n > 0 && err == io.EOF {
				return n, nil
			}
			return n, err
		}
		switch {
		case f.pending && b == '\n':
			f.pending = false
			p[n] = '\n'
			n++
		case f.pending:
			p[n] = '\r'
			n++
			f.pending = b == '\r'
			if !f.pending {
				if n == len(p) {
					_ = f.r.UnreadByte()
					return n, nil
				}
				p[n] = b
				n++
			}
		case b == '\r':
			f.pending = true
		default:
			p[n] = b
			n++
		}
		if f.r.Buffered() == 0 && n > 0 {
			return n, nil
		}
	}
	return n, nil
}
