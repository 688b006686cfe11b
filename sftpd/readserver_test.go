package sftpd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/djftpd/djftpd/djangoclient"
)

// statusCodeOf is the SFTP status a client got (pkg/sftp's client turns NO_SUCH_FILE and
// PERMISSION_DENIED into fs errors), 0 for none, or -1.
func statusCodeOf(err error) int {
	var se *sftp.StatusError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, os.ErrNotExist):
		return 2
	case errors.Is(err, os.ErrPermission):
		return 3
	case errors.As(err, &se):
		return int(se.Code)
	}
	return -1
}

// TestReadServerDownload: a file opened for reading is served by readServer: reads at any
// offset, short at the end, EOF past it, FSTAT, a listing and an upload beside it (the
// request server's handles), WRITE refused, FSETSTAT by the grant's M, and the download
// event with its bytes at close.
func TestReadServerDownload(t *testing.T) {
	for _, perms := range []string{"elradfmw", "elradfmwM"} {
		t.Run(perms, func(t *testing.T) {
			ts := startServer(t, defaultConfig(), func(g *testGate) { g.perms = perms })
			data := randomBytes(100<<10 + 7)
			must(t, os.WriteFile(filepath.Join(ts.gate.home, "big"), data, 0o640))
			c, err := ts.dial(t, ssh.Password("pw"))
			must(t, err)
			defer c.Close()
			sc := sftpClient(t, c)
			f, err := sc.Open("/big")
			must(t, err)
			checkReads(t, f, data)
			fi, err := f.Stat() // FSTAT: the request server's Stat of the path
			if err != nil || fi.Size() != int64(len(data)) || fi.Name() != "big" {
				t.Fatalf("fstat: %v, %v", fi, err)
			}
			if _, err := sc.ReadDir("/d"); err != nil {
				t.Fatalf("listing beside a download: %v", err)
			}
			must(t, writeAt(sc, "/up", os.O_WRONLY|os.O_CREATE, "beside", 0))
			if _, err := f.Write([]byte("x")); statusCodeOf(err) != 4 {
				t.Fatalf("write to a file opened for reading: %v", err)
			}
			err = f.Chmod(0o600) // FSETSTAT: the request server's Setstat of the path
			if want := map[bool]int{true: 0, false: 3}[perms == "elradfmwM"]; statusCodeOf(err) != want {
				t.Fatalf("fsetstat with %q: %v", perms, err)
			}
			must(t, f.Close())
			if got, err := os.ReadFile(filepath.Join(ts.gate.home, "big")); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("the file changed: %v", err)
			}
			u := ts.gate.users[0]
			waitFor(t, func() bool { return hasEvent(u, djangoclient.EventFileSent, "/big") })
		})
	}
}

func checkReads(t *testing.T, f *sftp.File, data []byte) {
	t.Helper()
	for _, c := range []struct {
		off, n int
		want   int
		err    error
	}{
		{0, 100, 100, nil},
		{1000, 64 << 10, 64 << 10, nil}, // the client splits it in 32 KiB requests
		{len(data) - 10, 100, 10, io.EOF},
		{len(data), 10, 0, io.EOF},
		{len(data) + 1<<20, 10, 0, io.EOF},
	} {
		buf := make([]byte, c.n)
		n, err := f.ReadAt(buf, int64(c.off))
		if n != c.want || !errors.Is(err, c.err) && !(c.err == nil && err == nil) {
			t.Fatalf("ReadAt(%d bytes at %d): %d, %v; want %d, %v", c.n, c.off, n, err, c.want, c.err)
		}
		if n > 0 && !bytes.Equal(buf[:n], data[c.off:c.off+n]) {
			t.Fatalf("ReadAt(%d bytes at %d): bytes differ", c.n, c.off)
		}
	}
	var all bytes.Buffer
	if _, err := f.WriteTo(&all); err != nil || !bytes.Equal(all.Bytes(), data) {
		t.Fatalf("pipelined read: %d bytes, %v", all.Len(), err)
	}
}

func hasEvent(u *testUser, typ, path string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, e := range u.events {
		if e.Type == typ && e.Path != nil && *e.Path == path {
			return true
		}
	}
	return false
}

// TestReadServerRefusals: opens readServer refuses answer as the request server's did.
func TestReadServerRefusals(t *testing.T) {
	ts := startServer(t, defaultConfig(), func(g *testGate) { g.perms = "el" })
	c, err := ts.dial(t, ssh.Password("pw"))
	must(t, err)
	defer c.Close()
	sc := sftpClient(t, c)
	if _, err := sc.Open("/f"); statusCodeOf(err) != 3 {
		t.Fatalf("open without r: %v", err)
	}
	ts = startServer(t, defaultConfig(), nil)
	c, err = ts.dial(t, ssh.Password("pw"))
	must(t, err)
	defer c.Close()
	sc = sftpClient(t, c)
	for name, want := range map[string]int{"/missing": 2, "/d": 4, "/out": 3, "/../../etc/passwd": 2} {
		if _, err := sc.Open(name); statusCodeOf(err) != want {
			t.Fatalf("open %s: %v, want status %d", name, err, want)
		}
	}
}

// TestReadServerSessionEnd: a connection dropped with files open closes them as cut short.
func TestReadServerSessionEnd(t *testing.T) {
	ts := startServer(t, defaultConfig(), nil)
	c, err := ts.dial(t, ssh.Password("pw"))
	must(t, err)
	sc := sftpClient(t, c)
	f, err := sc.Open("/f")
	must(t, err)
	if _, err := f.Read(make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	waitFor(t, func() bool {
		return len(ts.gate.users) == 1 && hasEvent(ts.gate.users[0], djangoclient.EventIncompleteFileSent, "/f")
	})
	waitFor(t, func() bool { return ts.srv.Active() == 0 })
}

// memChannel is an ssh.Channel over fixed input; what is written is kept.
type memChannel struct {
	in  io.Reader
	mu  sync.Mutex
	out bytes.Buffer
}

func (c *memChannel) Read(p []byte) (int, error) { return c.in.Read(p) }
func (c *memChannel) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.out.Write(p)
}
func (c *memChannel) Close() error          { return nil }
func (c *memChannel) CloseWrite() error     { return nil }
func (c *memChannel) Stderr() io.ReadWriter { return nil }
func (c *memChannel) written() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.out.Bytes())
}
func (c *memChannel) SendRequest(string, bool, []byte) (bool, error) { return false, nil }

// sftpPacket builds an SFTP packet: type, id, then fields (strings as SSH strings, uint32 and
// uint64 as such, []byte as is).
func sftpPacket(typ byte, id uint32, fields ...any) []byte {
	b := []byte{0, 0, 0, 0, typ}
	b = binary.BigEndian.AppendUint32(b, id)
	for _, f := range fields {
		switch v := f.(type) {
		case string:
			b = appendString(b, v)
		case uint32:
			b = binary.BigEndian.AppendUint32(b, v)
		case uint64:
			b = binary.BigEndian.AppendUint64(b, v)
		case []byte:
			b = append(b, v...)
		}
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

// serveStream runs a readServer over the client's stream in and returns what it passed up
// to the request server and what it replied. A stand-in for the request server answers each
// packet passed up whole with a status of code 99, left out of replies.
func serveStream(t testing.TB, in []byte, perms string, local bool) (up, replies []byte, open *atomic.Int64) {
	home := fixture(t.(*testing.T))
	root, err := os.OpenRoot(home)
	must(t, err)
	defer root.Close()
	h := newFileHandlers(&testUser{perms: perms, root: root}, true, nil)
	ch := &memChannel{in: bytes.NewReader(in)}
	rs := newReadServer(&batchReader{Channel: ch}, h, local)
	for {
		head := make([]byte, 4)
		n, err := io.ReadFull(rs, head)
		up = append(up, head[:n]...)
		if err != nil {
			break
		}
		body := make([]byte, min(int(binary.BigEndian.Uint32(head)), len(in))) // more: cut short
		n, err = io.ReadFull(rs, body)
		up = append(up, body[:n]...)
		if err != nil {
			break
		}
		if len(body) > 0 {
			_, err = rs.Write(sftpPacket(fxpStatus, 0, uint32(99), "", ""))
			must(t, err)
		}
	}
	rs.flushHere()
	must(t, rs.Flush())
	return up, ownReplies(t, ch.written()), h.open
}

// ownReplies drops the stand-in's statuses (code 99) from replies, each checked whole.
func ownReplies(t testing.TB, b []byte) []byte {
	var own []byte
	for len(b) > 0 {
		if len(b) < 9 || 4+int(binary.BigEndian.Uint32(b)) > len(b) {
			t.Fatalf("a reply cut short: %q", b)
		}
		p := b[:4+int(binary.BigEndian.Uint32(b))]
		if !(p[4] == fxpStatus && len(p) >= 13 && binary.BigEndian.Uint32(p[9:]) == 99) {
			own = append(own, p...)
		}
		b = b[len(p):]
	}
	return own
}

// TestReadServerPackets: what readServer answers, rewrites and passes up, packet by packet.
func TestReadServerPackets(t *testing.T) {
	open := sftpPacket(fxpOpen, 1, "/f", uint32(fxfRead), uint32(0))
	others := [][]byte{
		sftpPacket(1, 3), // INIT: not a request readServer knows
		sftpPacket(fxpOpen, 2, "/f", uint32(fxfRead|fxfWrite), uint32(0)), // not read-only
		sftpPacket(fxpRead, 4, "1", uint64(0), uint32(10)),                // the request server's handle
		sftpPacket(fxpClose, 5, "1"),
		sftpPacket(fxpWrite, 6, "1", uint64(0), "data"),
		{0, 0, 0, 0}, // an empty packet: the request server ends the session on it
	}
	in := append([]byte{}, open...)
	in = append(in, sftpPacket(fxpRead, 10, "r1", uint64(2), uint32(4))...)
	in = append(in, sftpPacket(fxpRead, 11, "r1", uint64(8), uint32(100))...)
	in = append(in, sftpPacket(fxpRead, 12, "r1", uint64(10), uint32(100))...)
	in = append(in, sftpPacket(fxpRead, 13, "r1", uint64(0))...) // no length
	in = append(in, sftpPacket(fxpReaddir, 14, "r1")...)
	in = append(in, sftpPacket(fxpWrite, 15, "r1", uint64(0), "data")...)
	in = append(in, sftpPacket(fxpFstat, 16, "r1")...)
	in = append(in, sftpPacket(fxpFsetstat, 17, "r1", uint32(4), uint32(0o600))...)
	in = append(in, sftpPacket(fxpClose, 18, "r1")...)
	in = append(in, sftpPacket(fxpRead, 19, "r1", uint64(0), uint32(4))...) // closed: not readServer's
	for _, p := range others {
		in = append(in, p...)
	}
	up, replies, openFiles := serveStream(t, in, "elr", true)
	wantUp := append(sftpPacket(fxpStat, 16, "/f"), sftpPacket(fxpSetstat, 17, "/f", uint32(4), uint32(0o600))...)
	wantUp = append(wantUp, sftpPacket(fxpRead, 19, "r1", uint64(0), uint32(4))...)
	for _, p := range others {
		wantUp = append(wantUp, p...)
	}
	if !bytes.Equal(up, wantUp) {
		t.Fatalf("passed up\n%q\nwant\n%q", up, wantUp)
	}
	want := [][]byte{
		sftpPacket(fxpHandle, 1, "r1"),
		sftpPacket(fxpData, 10, "2345"),
		sftpPacket(fxpData, 11, "89"),
		sftpPacket(fxpStatus, 12, uint32(1), "EOF", ""),
		sftpPacket(fxpStatus, 13, uint32(5), "bad message", ""),
		sftpPacket(fxpStatus, 14, uint32(4), "not a directory handle", ""),
		sftpPacket(fxpStatus, 15, uint32(4), "file not open for writing", ""),
		sftpPacket(fxpStatus, 18, uint32(0), "", ""),
	}
	if got := bytes.Join(want, nil); !bytes.Equal(replies, got) {
		t.Fatalf("replies\n%q\nwant\n%q", replies, got)
	}
	if openFiles.Load() != 0 {
		t.Fatalf("%d files left open", openFiles.Load())
	}
}

// TestReadServerObjectStorage: with a home in object storage every packet passes up.
func TestReadServerObjectStorage(t *testing.T) {
	in := append(sftpPacket(fxpOpen, 1, "/f", uint32(fxfRead), uint32(0)), sftpPacket(fxpRead, 2, "r1", uint64(0), uint32(4))...)
	up, replies, _ := serveStream(t, in, "elr", false)
	if !bytes.Equal(up, in) || len(replies) != 0 {
		t.Fatalf("passed up %q, replied %q", up, replies)
	}
}

// FuzzReadServer feeds readServer any client stream: no panic; with no fast path (object
// storage) every byte passes up unchanged; its replies are whole packets; and every file it
// opened is closed once the stream ends.
func FuzzReadServer(f *testing.F) {
	f.Add(append(sftpPacket(fxpOpen, 1, "/f", uint32(fxfRead), uint32(0)), sftpPacket(fxpRead, 2, "r1", uint64(0), uint32(4))...))
	f.Add(append(sftpPacket(fxpOpen, 1, "/f", uint32(fxfRead), uint32(0)), sftpPacket(fxpWrite, 2, "r1", uint64(0), "xx")...))
	f.Add(append(sftpPacket(fxpOpen, 1, "/f", uint32(fxfRead), uint32(0)), sftpPacket(fxpFsetstat, 2, "r1", uint32(0))...))
	f.Add(sftpPacket(fxpOpen, 1, "/../f", uint32(fxfRead), uint32(0)))
	f.Add([]byte{0, 0, 0, 9, fxpWrite, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, in []byte) {
		up, replies, _ := serveStream(t, in, "", false)
		if !bytes.Equal(up, in) {
			t.Fatalf("object storage: passed up %q of %q", up, in)
		}
		if len(replies) != 0 {
			t.Fatalf("object storage: replied %q", replies)
		}
		_, _, open := serveStream(t, in, "elr", true) // its replies are checked whole
		if open.Load() != 0 {
			t.Fatalf("%d files left open", open.Load())
		}
	})
}

// TestReadServerOpenAfterEarlierRequests: an OPEN readServer serves waits until the request
// server has answered what came before it (a CLOSE that renames an upload into place, sent
// with the OPEN right behind it), as the request server's single command worker did.
func TestReadServerOpenAfterEarlierRequests(t *testing.T) {
	root, err := os.OpenRoot(fixture(t))
	must(t, err)
	defer root.Close()
	h := newFileHandlers(&testUser{perms: "elr", root: root}, true, nil)
	in := append(sftpPacket(fxpClose, 1, "1"), sftpPacket(fxpOpen, 2, "/f", uint32(fxfRead), uint32(0))...)
	ch := &memChannel{in: bytes.NewReader(in)}
	rs := newReadServer(&batchReader{Channel: ch}, h, true)
	pc := newParkingChannel(rs, sftp.Handlers{}, time.Hour, nil) // what counts the requests, as in a session
	pc.ended, rs.settle = rs.closeFiles, pc.waitResponses
	close1 := make([]byte, len(sftpPacket(fxpClose, 1, "1")))
	_, err = io.ReadFull(pc, close1)
	must(t, err)
	var wg sync.WaitGroup
	wg.Go(func() { // the request server's worker, slow to close
		time.Sleep(50 * time.Millisecond)
		_, err := pc.Write(sftpPacket(fxpStatus, 1, uint32(0), "", ""))
		must(t, err)
	})
	if n, err := pc.Read(make([]byte, 4)); n != 0 || err != io.EOF {
		t.Fatalf("after the OPEN: %d, %v", n, err)
	}
	wg.Wait()
	rs.flushHere()
	must(t, rs.Flush())
	want := append(sftpPacket(fxpStatus, 1, uint32(0), "", ""), sftpPacket(fxpHandle, 2, "r1")...)
	if got := ch.written(); !bytes.Equal(got, want) {
		t.Fatalf("replies %q, want %q", got, want)
	}
}

// TestReadServerTailHold: the rest of a full READ reply (less than an SSH packet) waits for
// the next replies, and goes with them when the client pipelines; a client reading one
// request at a time waits for it tailStrikes times, then gets each reply whole at once (but
// for a probe every tailProbe replies).
func TestReadServerTailHold(t *testing.T) {
	home := t.TempDir()
	const chunks = tailStrikes + 3
	must(t, os.WriteFile(filepath.Join(home, "big"), randomBytes(chunks*maxRead), 0o640))
	root, err := os.OpenRoot(home)
	must(t, err)
	defer root.Close()
	read := func(i int) []byte { return sftpPacket(fxpRead, uint32(10+i), "r1", uint64(i*maxRead), uint32(maxRead)) }
	const reply = dataHead + maxRead
	for _, pipelined := range []bool{false, true} {
		t.Run(map[bool]string{false: "one at a time", true: "pipelined"}[pipelined], func(t *testing.T) {
			h := newFileHandlers(&testUser{perms: "elr", root: root}, true, nil)
			in := make(chan []byte, 1)
			ch := &chunkChannel{in: in}
			rs := newReadServer(&batchReader{Channel: ch}, h, true)
			rs.hold = time.Hour // the test runs the hold out itself (sendTail): no race with a timer
			done := make(chan error, 1)
			go func() {
				_, err := io.ReadAll(rs)
				done <- err
			}()
			in <- sftpPacket(fxpOpen, 1, "/big", uint32(fxfRead), uint32(0))
			waitFor(t, func() bool { return ch.waitingAfter(1) && !flushing(rs.batchWriter) })
			base := len(ch.written()) // the HANDLE
			for i := range chunks {
				in <- read(i)
				waitFor(t, func() bool { return ch.waitingAfter(i+2) && !flushing(rs.batchWriter) })
				sent, whole := len(ch.written())-base, (i+1)*reply
				switch {
				case pipelined && sent != whole-whole%sshPacket:
					t.Fatalf("reply %d: %d bytes sent, want the %d of whole packets (the rest held)", i, sent, whole-whole%sshPacket)
				case !pipelined && i < tailStrikes && sent == whole:
					t.Fatalf("reply %d: sent whole; the first %d replies' rests are held", i, tailStrikes)
				case !pipelined && i >= tailStrikes && sent != whole:
					t.Fatalf("reply %d: %d of %d bytes sent: a client reading one request at a time "+
						"waited for %d held rests already", i, sent, whole, tailStrikes)
				}
				if !pipelined && sent != whole { // the hold runs out before the client's next request
					rs.sendTail()
					waitFor(t, func() bool { return len(ch.written())-base == whole })
				}
			}
			close(in)
			must(t, <-done)
			must(t, rs.Flush())
			if n := len(ch.written()) - base; n != chunks*reply {
				t.Fatalf("%d bytes in all, want %d", n, chunks*reply)
			}
		})
	}
}

func flushing(w *batchWriter) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.flushing
}

// chunkChannel is a memChannel whose reads return the chunks sent on in, one per read
// (EOF once in is closed); waiting tells that a read waits for the next chunk.
type chunkChannel struct {
	memChannel
	in   chan []byte
	rest []byte

	cmu     sync.Mutex
	waiting bool
	taken   int
}

// waitingAfter reports whether a read waits for the next chunk once n were taken.
func (c *chunkChannel) waitingAfter(n int) bool {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	return c.waiting && c.taken == n
}

func (c *chunkChannel) Read(p []byte) (int, error) {
	if len(c.rest) == 0 {
		c.cmu.Lock()
		c.waiting = true
		c.cmu.Unlock()
		b, ok := <-c.in
		c.cmu.Lock()
		c.waiting, c.taken = false, c.taken+1
		c.cmu.Unlock()
		if !ok {
			return 0, io.EOF
		}
		c.rest = b
	}
	n := copy(p, c.rest)
	c.rest = c.rest[n:]
	return n, nil
}

// TestReadServerErrorNamesNoHostPath: a READ the file refuses (an offset past 2^63 is a
// negative one to pread) gets SSH_FX_FAILURE without the home's path on the host in its
// text (os.File's errors carry it).
func TestReadServerErrorNamesNoHostPath(t *testing.T) {
	root, err := os.OpenRoot(fixture(t))
	must(t, err)
	defer root.Close()
	h := newFileHandlers(&testUser{perms: "elr", root: root}, true, nil)
	in := append(sftpPacket(fxpOpen, 1, "/f", uint32(fxfRead), uint32(0)), sftpPacket(fxpRead, 2, "r1", uint64(1)<<63, uint32(4))...)
	ch := &memChannel{in: bytes.NewReader(in)}
	rs := newReadServer(&batchReader{Channel: ch}, h, true)
	if _, err := io.ReadAll(rs); err != nil {
		t.Fatal(err)
	}
	must(t, rs.Flush())
	want := append(sftpPacket(fxpHandle, 1, "r1"), sftpPacket(fxpStatus, 2, uint32(4), "failure", "")...)
	if got := ch.written(); !bytes.Equal(got, want) {
		t.Fatalf("replies %q, want %q", got, want)
	}
}
