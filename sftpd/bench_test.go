package sftpd

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// benchSize is the file each benchmark iteration moves.
const benchSize = 32 << 20

// The transfer benchmarks run a real Server on loopback and a real client in this process,
// configured as bench/cmd/ftpbench's (64 requests in flight, concurrent reads and writes):
// MB/s, and allocations per transfer of client and server together (the client's share is
// the same before and after a server change).
//
//	go test -run '^$' -bench 'SFTP(Get|Put)' -benchmem ./sftpd

func BenchmarkSFTPGet(b *testing.B) {
	sc, home := benchClient(b)
	must(b, os.WriteFile(filepath.Join(home, "big.bin"), randomBytes(benchSize), 0o640))
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		f, err := sc.Open("/big.bin")
		must(b, err)
		n, err := f.WriteTo(io.Discard)
		must(b, err)
		must(b, f.Close())
		if n != benchSize {
			b.Fatalf("read %d bytes", n)
		}
	}
}

func BenchmarkSFTPPut(b *testing.B) {
	sc, _ := benchClient(b)
	data := randomBytes(benchSize)
	b.SetBytes(benchSize)
	b.ReportAllocs()
	for b.Loop() {
		f, err := sc.OpenFile("/up.bin", os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		must(b, err)
		n, err := f.ReadFrom(bytes.NewReader(data))
		must(b, err)
		must(b, f.Close())
		if n != benchSize {
			b.Fatalf("wrote %d bytes", n)
		}
	}
}

// benchClient starts a Server over an empty home (atomic uploads on, as the sidecar's
// default) and returns a logged-in client and the home.
func benchClient(b *testing.B) (*sftp.Client, string) {
	hostKeys, err := LoadHostKeys(nil, b.TempDir(), nil)
	must(b, err)
	g := &testGate{home: b.TempDir()}
	cfg := defaultConfig()
	cfg.HostKeys = hostKeys
	srv, err := New(cfg, g)
	must(b, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(b, err)
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	c, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{User: "alice",
		Auth: []ssh.AuthMethod{ssh.Password("pw")}, HostKeyCallback: ssh.FixedHostKey(hostKeys[0].PublicKey()),
		Timeout: 5 * time.Second})
	must(b, err)
	sc, err := sftp.NewClient(c, sftp.UseConcurrentReads(true), sftp.UseConcurrentWrites(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	must(b, err)
	b.Cleanup(func() {
		sc.Close()
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-served
	})
	return sc, g.home
}

func randomBytes(n int) []byte {
	p := make([]byte, n)
	_, _ = rand.Read(p)
	return p
}
