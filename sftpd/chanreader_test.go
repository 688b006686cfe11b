package sftpd

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"

	"golang.org/x/crypto/ssh"
)

// countingChannel is a real SSH channel whose reads are counted.
type countingChannel struct {
	ssh.Channel
	reads int
}

func (c *countingChannel) Read(p []byte) (int, error) {
	c.reads++
	return c.Channel.Read(p)
}

// channelPair returns both ends of a session channel over a real SSH connection on
// loopback, and a barrier: once it returns, everything the client end wrote before it is
// in the server end's buffer (SSH delivers a connection's messages in order).
func channelPair(t *testing.T) (client, server ssh.Channel, barrier func()) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hk, err := ssh.NewSignerFromKey(priv)
	must(t, err)
	cfg := &ssh.ServerConfig{NoClientAuth: true}
	cfg.AddHostKey(hk)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	type end struct {
		ch   ssh.Channel
		reqs <-chan *ssh.Request
		err  error
	}
	got := make(chan end, 1)
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			got <- end{err: err}
			return
		}
		sc, chans, reqs, err := ssh.NewServerConn(nc, cfg)
		if err != nil {
			got <- end{err: err}
			return
		}
		t.Cleanup(func() { sc.Close() })
		ch, chReqs, err := (<-chans).Accept()
		go ssh.DiscardRequests(chReqs)
		got <- end{ch, reqs, err}
	}()
	c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "t", HostKeyCallback: ssh.FixedHostKey(hk.PublicKey())})
	must(t, err)
	t.Cleanup(func() { c.Close() })
	cch, cReqs, err := c.OpenChannel("session", nil)
	must(t, err)
	go ssh.DiscardRequests(cReqs)
	e := <-got
	must(t, e.err)
	return cch, e.ch, func() {
		_, _, _ = c.SendRequest("barrier", false, nil)
		<-e.reqs
	}
}

// TestBatchReaderFewChannelReads: SFTP packets that have arrived are read with far fewer
// channel reads (each of which may cost a window adjust on the wire) than packets, the
// bytes unchanged, and no buffer is held once they are read.
func TestBatchReaderFewChannelReads(t *testing.T) {
	client, server, barrier := channelPair(t)
	const packets, size = 24, 32 << 10
	var sent bytes.Buffer
	for i := range packets {
		body := bytes.Repeat([]byte{byte(i)}, size+i)
		sent.Write(binary.BigEndian.AppendUint32(nil, uint32(len(body))))
		sent.Write(body)
	}
	_, err := client.Write(sent.Bytes())
	must(t, err)
	must(t, client.CloseWrite())
	barrier()
	cc := &countingChannel{Channel: server}
	br := &batchReader{Channel: cc}
	var got bytes.Buffer
	for range packets { // as pkg/sftp's recvPacket: the length, then the body
		var l [4]byte
		_, err := io.ReadFull(br, l[:])
		must(t, err)
		body := make([]byte, binary.BigEndian.Uint32(l[:]))
		_, err = io.ReadFull(br, body)
		must(t, err)
		got.Write(l[:])
		got.Write(body)
	}
	if !bytes.Equal(got.Bytes(), sent.Bytes()) {
		t.Fatal("bytes changed")
	}
	if cc.reads >= packets {
		t.Fatalf("%d channel reads for %d packets", cc.reads, packets)
	}
	if br.buf != nil {
		t.Fatal("a buffer is held after the data is read")
	}
	if _, err := br.Read(make([]byte, 4)); !errors.Is(err, io.EOF) {
		t.Fatalf("read after the end: %v, want EOF", err)
	}
}
