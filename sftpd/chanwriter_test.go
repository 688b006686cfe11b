package sftpd

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// writeCountingChannel is a real SSH channel whose writes are counted.
type writeCountingChannel struct {
	ssh.Channel
	writes atomic.Int32
}

func (c *writeCountingChannel) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Channel.Write(p)
}

// response is an SFTP response as pkg/sftp writes it: a header announcing the payload,
// then the payload (none for a response written whole).
func response(id uint32, payload int) (header, body []byte) {
	header = packet(103, id, binary.BigEndian.AppendUint32(nil, uint32(payload)))
	binary.BigEndian.PutUint32(header, uint32(len(header)-4+payload))
	return header, bytes.Repeat([]byte{byte(id)}, payload)
}

// batchWriterGoroutines counts the flushers running.
func batchWriterGoroutines() int {
	return strings.Count(allStacks(), "\ncreated by github.com/djftpd/djftpd/sftpd.(*batchWriter)")
}

// TestBatchWriterIdle: on an idle channel a response goes out at once, with no later write
// or flush, its header and payload in one channel write (pkg/sftp's two writes were two
// SSH packets); once it is sent, no goroutine and no buffer are left.
func TestBatchWriterIdle(t *testing.T) {
	client, server, _ := channelPair(t)
	cc := &writeCountingChannel{Channel: server}
	w := newBatchWriter(cc)
	waitGoroutines(t, batchWriterGoroutines, 0)
	for i, size := range []int{5, 0, 1000} {
		header, body := response(uint32(i), size)
		for _, p := range [][]byte{header, body} {
			if len(p) > 0 {
				if n, err := w.Write(p); n != len(p) || err != nil {
					t.Fatalf("write: %d, %v", n, err)
				}
			}
		}
		got := make([]byte, len(header)+len(body))
		_, err := io.ReadFull(client, got)
		must(t, err)
		if !bytes.Equal(got, append(header, body...)) {
			t.Fatalf("response %d changed", i)
		}
		waitGoroutines(t, batchWriterGoroutines, 0)
		if cc.writes.Load() != int32(i+1) {
			t.Fatalf("%d channel writes for %d responses", cc.writes.Load(), i+1)
		}
		w.mu.Lock()
		held := w.buf != nil || w.flushing || w.held != 0
		w.mu.Unlock()
		if held {
			t.Fatal("a buffer, a flusher or a header is held once the response is sent")
		}
	}
}

// TestBatchWriterInOrder: responses written from several goroutines (one at a time, as
// pkg/sftp's connection lock makes them) while the flusher writes arrive whole and in
// order, small and large ones, in fewer channel writes than responses.
func TestBatchWriterInOrder(t *testing.T) {
	client, server, _ := channelPair(t)
	cc := &writeCountingChannel{Channel: server}
	w := newBatchWriter(cc)
	var mu sync.Mutex
	var sent bytes.Buffer
	var wg sync.WaitGroup
	const writers, each = 4, 60
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				size := []int{32 << 10, 0, 7, 32<<10 - 13, 300 << 10}[(g+i)%5]
				header, body := response(uint32(g*each+i), size)
				mu.Lock()
				for _, p := range [][]byte{header, body} {
					if len(p) > 0 {
						if _, err := w.Write(p); err != nil {
							t.Error(err)
						}
						sent.Write(p)
					}
				}
				mu.Unlock()
			}
		})
	}
	got := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(client)
		got <- b
	}()
	wg.Wait()
	must(t, w.Close())
	if !bytes.Equal(<-got, sent.Bytes()) {
		t.Fatal("the bytes received are not the responses written, in order")
	}
	if n := cc.writes.Load(); n >= writers*each {
		t.Fatalf("%d channel writes for %d responses", n, writers*each)
	}
}

// TestBatchWriterError: the channel's error reaches the next Write, Flush and Close.
func TestBatchWriterError(t *testing.T) {
	_, server, _ := channelPair(t)
	w := newBatchWriter(server)
	must(t, server.Close())
	header, body := response(1, 10)
	_, _ = w.Write(header)
	_, _ = w.Write(body) // gathered: its error comes later
	if err := w.Flush(); !errors.Is(err, io.EOF) {
		t.Fatalf("flush: %v, want EOF", err)
	}
	if _, err := w.Write(header); !errors.Is(err, io.EOF) {
		t.Fatalf("write after the error: %v, want EOF", err)
	}
	if err := w.Close(); !errors.Is(err, io.EOF) {
		t.Fatalf("close: %v, want EOF", err)
	}
	waitGoroutines(t, batchWriterGoroutines, 0)
}

// TestBatchWriterBounded: when the client reads nothing, Write waits once a batch is
// gathered beyond what the channel's window took; everything arrives once it reads.
func TestBatchWriterBounded(t *testing.T) {
	client, server, _ := channelPair(t)
	w := newBatchWriter(server)
	var accepted atomic.Int64
	done := make(chan struct{})
	var sent bytes.Buffer
	go func() {
		defer close(done)
		for i := range 128 { // 4 MiB: twice the client's window
			header, body := response(uint32(i), 32<<10)
			for _, p := range [][]byte{header, body} {
				if _, err := w.Write(p); err != nil {
					return
				}
				sent.Write(p)
				accepted.Add(int64(len(p)))
			}
		}
	}()
	for deadline := time.Now().Add(5 * time.Second); !writerWaits(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Write never waited")
		}
	}
	const window = 64 * 32 << 10 // x/crypto/ssh's channel window
	if n := accepted.Load(); n > window+2*writeBatch+sshPacket {
		t.Fatalf("%d bytes accepted while the client read nothing", n)
	}
	got, err := io.ReadAll(io.LimitReader(client, int64(128*(32<<10+13))))
	must(t, err)
	<-done
	must(t, w.Flush())
	if !bytes.Equal(got, sent.Bytes()) {
		t.Fatal("bytes changed")
	}
}

// writerWaits reports whether a goroutine waits in batchWriter.Write.
func writerWaits() bool {
	for _, g := range strings.Split(allStacks(), "\n\n") {
		if strings.Contains(g, "sync.(*Cond).Wait") && strings.Contains(g, "sftpd.(*batchWriter).Write") {
			return true
		}
	}
	return false
}

// slowConn counts its writes and makes each take a while, as a network slower than the
// disk does: responses queue up behind the one being sent.
type slowConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c slowConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	time.Sleep(100 * time.Microsecond)
	return c.Conn.Write(p)
}

type slowListener struct {
	net.Listener
	writes *atomic.Int64
}

func (l slowListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return slowConn{c, l.writes}, nil
}

// TestGetWritesPerPacket: a download costs the server under one write(2) per 32 KiB: the
// SSH packets of a batch go out together (cork.go), not two write(2) each (x/crypto/ssh's
// 4 KiB bufio, then the rest) nor three (a 13-byte packet for each response's header,
// then the 32 KiB payload's packet).
func TestGetWritesPerPacket(t *testing.T) {
	var writes atomic.Int64
	cfg := defaultConfig()
	cfg.corkWait = time.Second // a slow machine's batch stays one write
	ts := startServerWrapped(t, cfg, nil, func(ln net.Listener) net.Listener {
		return slowListener{ln, &writes}
	})
	const size = 4 << 20
	data := randomBytes(size)
	must(t, os.WriteFile(filepath.Join(ts.gate.home, "big.bin"), data, 0o640))
	c, err := ts.dial(t, ssh.Password("pw"))
	must(t, err)
	defer c.Close()
	sc, err := sftp.NewClient(c, sftp.UseConcurrentReads(true), sftp.MaxConcurrentRequestsPerFile(64))
	must(t, err)
	defer sc.Close()
	f, err := sc.Open("/big.bin")
	must(t, err)
	before := writes.Load()
	var got bytes.Buffer
	_, err = f.WriteTo(&got)
	must(t, err)
	perPacket := float64(writes.Load()-before) / (size / sshPacket)
	must(t, f.Close())
	if !bytes.Equal(got.Bytes(), data) {
		t.Fatal("bytes changed")
	}
	if perPacket > 1 {
		t.Fatalf("%.2f write(2) per 32 KiB sent", perPacket)
	}
	t.Logf("%.2f write(2) per 32 KiB sent", perPacket)
}

// TestGatherThenWrite: replies gathered for a flushHere (readServer's), then a response
// written that does not fit beside them: the write starts a flusher rather than wait for
// one (it waited forever: found by FuzzReadServer), and all arrive in order; flushHere
// sends what is left from the caller's goroutine.
func TestGatherThenWrite(t *testing.T) {
	ch := &memChannel{in: bytes.NewReader(nil)}
	w := newBatchWriter(ch)
	var want []byte
	for i := range 3 {
		r := bytes.Repeat([]byte{byte('a' + i)}, 40<<10)
		want = append(want, r...)
		must(t, gather(w, r))
	}
	if n := len(ch.written()); n != 0 {
		t.Fatalf("%d bytes sent while gathering less than a batch", n)
	}
	big := bytes.Repeat([]byte{'z'}, 20<<10)
	want = append(want, big...)
	done := make(chan error, 1)
	go func() {
		_, err := w.Write(big)
		done <- err
	}()
	select {
	case err := <-done:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Write waits for a flusher nobody starts")
	}
	w.flushHere()
	must(t, w.Flush())
	if !bytes.Equal(ch.written(), want) {
		t.Fatal("bytes changed or lost")
	}
}

// TestFlushWhole: the whole packets go at once; the rest waits for what follows (and goes
// with it), or goes alone after the hold.
func TestFlushWhole(t *testing.T) {
	ch := &memChannel{in: bytes.NewReader(nil)}
	w := newBatchWriter(ch)
	first := bytes.Repeat([]byte{'a'}, sshPacket+13)
	must(t, gather(w, first))
	w.flushWhole(time.Hour)
	if got := ch.written(); !bytes.Equal(got, first[:sshPacket]) {
		t.Fatalf("%d bytes sent, want the whole packet, %d", len(got), sshPacket)
	}
	second := bytes.Repeat([]byte{'b'}, sshPacket+13)
	must(t, gather(w, second))
	w.flushWhole(10 * time.Millisecond)
	want := append(first, second...)
	if got := ch.written(); !bytes.Equal(got, want[:2*sshPacket]) {
		t.Fatalf("%d bytes sent, want %d: the rest went with the next reply", len(got), 2*sshPacket)
	}
	waitFor(t, func() bool { return bytes.Equal(ch.written(), want) }) // the hold ran out
}

// gather is gatherInto of p.
func gather(w *batchWriter, p []byte) error {
	return w.gatherInto(len(p), func(b []byte) int { return copy(b, p) })
}
