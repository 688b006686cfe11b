package ftpdriver

import (
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"time"
)

// During a transfer goftp does not read the control connection: the command runs on
// its read loop. A watcher reads it instead, so that ABOR stops the transfer (RFC 959
// 4.1.3) and a client that disappears mid-upload is noticed (its atomic upload is then
// discarded, not committed). What the watcher reads is handed back to goftp through
// controlConn.pending.
// goftp defect: its read loop owns the control connection and offers no way to stop
// or inspect it during a command, so the watcher's bytes must be re-fed to it.

// transferWatch is one watcher; stop ends it.
type transferWatch struct {
	c        *controlConn
	done     chan struct{}
	aborted  atomic.Bool // ABOR arrived
	peerGone atomic.Bool // the control connection reached EOF or failed
}

// watchTransfer starts a watcher that calls abort (once) when ABOR arrives or the
// client goes away. Control reads during a transfer have no deadline: the idle timeout
// never fires during a transfer; TCP keep-alive keeps the silent connection's path open.
func (c *controlConn) watchTransfer(abort func()) *transferWatch {
	w := &transferWatch{c: c, done: make(chan struct{})}
	c.keepAlive()
	_ = c.raw.SetReadDeadline(time.Time{})
	go w.run(abort)
	return w
}

func (w *transferWatch) run(abort func()) {
	defer close(w.done)
	buf := make([]byte, 512)
	limit := 4 * w.c.sess.srv.cfg.MaxLineLength
	for {
		n, err := w.c.stream().Read(buf)
		if n > 0 {
			w.c.pendingMu.Lock()
			w.c.pending = append(w.c.pending, buf[:n]...)
			var found bool
			w.c.pending, found = cutABOR(w.c.pending)
			full := len(w.c.pending) > limit
			w.c.pendingMu.Unlock()
			if found && !w.aborted.Swap(true) {
				abort()
			}
			if full {
				return // goftp's next read will find the overlong line
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return // stopped
			}
			w.c.pendingMu.Lock()
			w.c.peerGone = true
			w.c.pendingMu.Unlock()
			if !w.peerGone.Swap(true) {
				abort()
			}
			return
		}
	}
}

// stop ends the watcher, giving the client settle more time to show it went away, and
// reports what the watcher saw.
func (w *transferWatch) stop(settle time.Duration) (aborted, peerGone bool) {
	_ = w.c.raw.SetReadDeadline(time.Now().Add(settle))
	<-w.done
	return w.aborted.Load(), w.peerGone.Load()
}

// readPending serves what a watcher read before reading the connection again.
func (c *controlConn) readPending(p []byte) (int, error) {
	c.pendingMu.Lock()
	defer c.pendingMu.Unlock()
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	if c.peerGone {
		return 0, io.EOF
	}
	return 0, nil
}

// cutABOR removes the first complete ABOR line from buf. Clients may precede ABOR
// with Telnet "interrupt process" and "synch" sequences (IAC IP, IAC DM).
func cutABOR(buf []byte) ([]byte, bool) {
	start := 0
	for {
		i := bytes.IndexByte(buf[start:], '\n')
		if i < 0 {
			return buf, false
		}
		end := start + i + 1
		if isABOR(buf[start:end]) {
			return append(buf[:start:start], buf[end:]...), true
		}
		start = end
	}
}

func isABOR(line []byte) bool {
	var b strings.Builder
	for i := 0; i < len(line); i++ {
		if line[i] == 0xff { // Telnet IAC and the byte after it
			i++
			continue
		}
		if line[i] < 0x80 {
			b.WriteByte(line[i])
		}
	}
	return strings.EqualFold(strings.TrimSpace(b.String()), "ABOR")
}
