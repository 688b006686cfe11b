package sftpd

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// packet is an SFTP packet: length, type, id, then the fields.
func packet(typ byte, id uint32, fields ...[]byte) []byte {
	b := []byte{0, 0, 0, 0, typ}
	b = binary.BigEndian.AppendUint32(b, id)
	for _, f := range fields {
		b = append(b, f...)
	}
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func sshStr(s string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(s))), s...)
}

// TestPacketTracking: whatever the cuts in the client's bytes, parkingChannel counts the
// requests in flight and the handles open as pkg/sftp's request server sees them.
func TestPacketTracking(t *testing.T) {
	open := packet(3, 1, sshStr("/f"), make([]byte, 8))
	read := packet(5, 2, sshStr("1"), make([]byte, 12))
	closeReq := packet(fxpClose, 3, sshStr("1"))
	handle := packet(fxpHandle, 1, sshStr("1"))
	data := packet(103, 2, binary.BigEndian.AppendUint32(nil, 5)) // header; payload apart
	binary.BigEndian.PutUint32(data, uint32(len(data)-4+5))
	status := packet(101, 3, make([]byte, 12))
	for cut := 1; cut <= len(open); cut++ {
		c := newParkingChannel(nil, sftp.Handlers{}, time.Second, nil)
		feed := func(b []byte) {
			for len(b) > 0 {
				k := min(cut, len(b))
				c.track(b[:k])
				b = b[k:]
			}
		}
		check := func(step string, inflight, handles int) {
			t.Helper()
			if c.inflight != inflight || len(c.handles) != handles || c.broken {
				t.Fatalf("cut %d, %s: %d in flight, %d handles, broken %v; want %d, %d", cut, step,
					c.inflight, len(c.handles), c.broken, inflight, handles)
			}
		}
		feed(open)
		check("open read", 1, 0)
		c.response(handle)
		check("handle written", 0, 1)
		feed(read)
		c.response(data)
		check("data header written", 1, 1)
		c.response([]byte("hello"))
		check("data written", 0, 1)
		feed(closeReq)
		c.response(status)
		check("closed", 0, 0)
	}
}

// FuzzPacketTracking: any bytes, cut anywhere, both ways: no panic, and the counts stay
// sane (a stream not understood only stops parking).
func FuzzPacketTracking(f *testing.F) {
	f.Add(packet(fxpClose, 3, sshStr("1")), packet(fxpHandle, 1, sshStr("1")), uint8(3))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 9, 4}, []byte{0, 0, 0, 1}, uint8(1))
	f.Add(packet(fxpClose, 3, []byte{0xff, 0xff, 0xff, 0xff}), packet(fxpHandle, 1), uint8(7))
	f.Fuzz(func(t *testing.T, in, out []byte, cut uint8) {
		c := newParkingChannel(nil, sftp.Handlers{}, time.Second, nil)
		step := int(cut%16) + 1
		for b := in; len(b) > 0; b = b[min(step, len(b)):] {
			c.track(b[:min(step, len(b))])
		}
		for b := out; len(b) > 0; b = b[min(step, len(b)):] {
			c.response(b[:min(step, len(b))])
		}
		if c.got < 0 || (c.size != 0 && c.got >= c.size) || c.wleft < 0 && !c.broken {
			t.Fatalf("got %d of %d, wleft %d, broken %v", c.got, c.size, c.wleft, c.broken)
		}
		_ = c.parkable()
	})
}

// heapPerSession is the heap in use after a GC, divided by n, once f has opened n sessions.
func heapPerSession(n int, f func()) int64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.GC()
	runtime.ReadMemStats(&after)
	return (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(n)
}

// TestTransfersUseAllocator: a session that has logged in and asked something holds no
// 256 KiB page of pkg/sftp's allocator, not parked yet; a download does not allocate its
// data (pkg/sftp's 32 KiB slice per READ without the allocator) once the pages are there;
// downloads and uploads are whole, also with two files open at once.
func TestTransfersUseAllocator(t *testing.T) {
	cfg := defaultConfig()
	cfg.parkAfter = time.Hour
	ts := startServer(t, cfg, nil)
	const n = 20
	var clients []*sftp.Client
	perSession := heapPerSession(n, func() {
		for range n {
			c, err := ts.dial(t, ssh.Password("pw"))
			must(t, err)
			t.Cleanup(func() { c.Close() })
			sc := sftpClient(t, c)
			_, err = sc.Getwd()
			must(t, err)
			clients = append(clients, sc)
		}
	})
	if perSession > 128<<10 {
		t.Fatalf("%d bytes of heap per idle session", perSession)
	}
	const size = 8 << 20
	data := randomBytes(size)
	must(t, os.WriteFile(filepath.Join(ts.gate.home, "big.bin"), data, 0o640))
	sc := clients[0]
	got := bytes.NewBuffer(make([]byte, 0, size))
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = rate }()
	var before int64
	for i := range 2 { // the second reuses the first's pages
		before = requestServerAlloc()
		f, err := sc.Open("/big.bin")
		must(t, err)
		got.Reset()
		_, err = f.WriteTo(got)
		must(t, err)
		must(t, f.Close())
		if !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("download %d changed", i)
		}
	}
	// Without the allocator: a little over one byte per byte (a 32 KiB slice per READ).
	if perByte := float64(requestServerAlloc()-before) / size; perByte > 0.5 {
		t.Fatalf("the request server allocated %.2f bytes per byte downloaded", perByte)
	} else {
		t.Logf("the request server allocated %.2f bytes per byte downloaded", perByte)
	}
	up, err := sc.Create("/up.bin")
	must(t, err)
	other, err := sc.Open("/big.bin")
	must(t, err)
	_, err = up.ReadFrom(bytes.NewReader(data))
	must(t, err)
	must(t, up.Close())
	must(t, other.Close())
	back, err := os.ReadFile(filepath.Join(ts.gate.home, "up.bin"))
	must(t, err)
	if !bytes.Equal(back, data) {
		t.Fatal("upload changed")
	}
}

// requestServerAlloc is how many bytes have been allocated with pkg/sftp's request server
// on the stack (the server side of a test's client and server), as the memory profile has
// them (runtime.MemProfileRate 1 counts every allocation).
func requestServerAlloc() int64 {
	runtime.GC()
	runtime.GC()
	runtime.GC() // the profile is published two cycles late
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+50)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	var sum int64
	for _, r := range recs {
		frames := runtime.CallersFrames(r.Stack())
		for {
			f, more := frames.Next()
			if strings.Contains(f.Function, "sftp.(*RequestServer)") {
				sum += r.AllocBytes
				break
			}
			if !more {
				break
			}
		}
	}
	return sum
}

// TestRepliesAfterClientEOF: a client may send its requests, then EOF on the channel, and
// read the replies; each comes before the channel closes, also those pkg/sftp's request
// server sends after its Serve returned (its packet manager writes the last of them on its
// own goroutine: the session's end closed the channel under them).
func TestRepliesAfterClientEOF(t *testing.T) {
	ts := startServer(t, defaultConfig(), nil)
	var in []byte
	in = append(in, sftpPacket(1, 3)...) // INIT
	const stats = 6
	for i := range stats {
		in = append(in, sftpPacket(fxpStat, uint32(10+i), "/f")...)
	}
	for range 30 {
		c, err := ts.dial(t, ssh.Password("pw"))
		must(t, err)
		ch, reqs, err := c.OpenChannel("session", nil)
		must(t, err)
		go ssh.DiscardRequests(reqs)
		if ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{"sftp"})); !ok || err != nil {
			t.Fatalf("subsystem: %v, %v", ok, err)
		}
		_, err = ch.Write(in)
		must(t, err)
		must(t, ch.CloseWrite())
		out, err := io.ReadAll(ch)
		must(t, err)
		n := 0
		for len(out) >= 4 && 4+int(binary.BigEndian.Uint32(out)) <= len(out) {
			out = out[4+int(binary.BigEndian.Uint32(out)):]
			n++
		}
		c.Close()
		if n != 1+stats || len(out) != 0 {
			t.Fatalf("%d replies (%d bytes left over), want %d", n, len(out), 1+stats)
		}
	}
}
