package sftpd

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pkg/sftp"
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
