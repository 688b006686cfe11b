package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// The SFTP figures drive djftpd's SFTP and OpenSSH's sshd with this one client (Go's
// x/crypto/ssh + pkg/sftp), so the two servers see the same requests.

// sshAuth is a password, or the private key in keyFile when it is set (OpenSSH's bench user).
func sshAuth(pass, keyFile string) ([]ssh.AuthMethod, error) {
	if keyFile == "" {
		return []ssh.AuthMethod{ssh.Password(pass)}, nil
	}
	pem, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("parse key %s: %w", keyFile, err)
	}
	return []ssh.AuthMethod{ssh.PublicKeys(signer)}, nil
}

// sftpSession is one SSH connection with its sftp subsystem open.
type sftpSession struct {
	conn *ssh.Client
	sftp *sftp.Client
}

func (s *sftpSession) close() {
	_ = s.sftp.Close()
	_ = s.conn.Close()
}

func sftpDial(addr, user, pass, keyFile string) (*sftpSession, error) {
	auth, err := sshAuth(pass, keyFile)
	if err != nil {
		return nil, err
	}
	cfg := &ssh.ClientConfig{
		User: user, Auth: auth, Timeout: opTimeout,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), // loopback bench servers with throwaway keys
	}
	conn, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		return nil, fmt.Errorf("ssh dial %s: %w", addr, err)
	}
	cl, err := sftp.NewClient(conn, sftp.UseConcurrentReads(true), sftp.UseConcurrentWrites(true),
		sftp.MaxConcurrentRequestsPerFile(64))
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("sftp subsystem: %w", err)
	}
	return &sftpSession{conn, cl}, nil
}

// runSFTPGet times the download of path (open to last byte) over an open session.
func runSFTPGet(addr, user, pass, keyFile, path string) (any, error) {
	s, err := sftpDial(addr, user, pass, keyFile)
	if err != nil {
		return nil, err
	}
	defer s.close()
	start := time.Now()
	f, err := s.sftp.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	n, err := f.WriteTo(io.Discard) // pkg/sftp's pipelined read path
	if err != nil {
		return nil, fmt.Errorf("read after %d bytes: %w", n, err)
	}
	secs := time.Since(start).Seconds()
	return map[string]any{"bytes": n, "seconds": secs, "mbps": float64(n) / secs / 1e6}, nil
}

// runSFTPPut times the upload of src to path (open to the close's reply), then removes it.
func runSFTPPut(addr, user, pass, keyFile, src, path string) (any, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	defer in.Close()
	s, err := sftpDial(addr, user, pass, keyFile)
	if err != nil {
		return nil, err
	}
	defer s.close()
	start := time.Now()
	f, err := s.sftp.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	n, err := f.ReadFrom(in) // pipelined writes
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write after %d bytes: %w", n, err)
	}
	secs := time.Since(start).Seconds()
	if err := s.sftp.Remove(path); err != nil {
		return nil, fmt.Errorf("remove %s: %w", path, err)
	}
	return map[string]any{"bytes": n, "seconds": secs, "mbps": float64(n) / secs / 1e6}, nil
}

// runSFTPLogins opens sessions one after another (connect, key exchange, auth, sftp
// subsystem, close) for d; one untimed login first fills djftpd's cache.
func runSFTPLogins(addr, user, pass, keyFile string, d time.Duration, maxN int) (any, error) {
	s, err := sftpDial(addr, user, pass, keyFile)
	if err != nil {
		return nil, fmt.Errorf("warm-up login: %w", err)
	}
	s.close()
	n, start := 0, time.Now()
	for time.Since(start) < d && (maxN == 0 || n < maxN) {
		s, err := sftpDial(addr, user, pass, keyFile)
		if err != nil {
			return nil, fmt.Errorf("login %d: %w", n+1, err)
		}
		if _, err := s.sftp.Getwd(); err != nil {
			s.close()
			return nil, fmt.Errorf("login %d: realpath: %w", n+1, err)
		}
		s.close()
		n++
	}
	secs := time.Since(start).Seconds()
	return map[string]any{"logins": n, "seconds": secs, "per_second": float64(n) / secs}, nil
}

// runSFTPIdle opens n SFTP sessions (50 at a time), prints {"ready": n}, holds them until
// stdin closes, then closes them.
func runSFTPIdle(addr, user, pass, keyFile string, n int) (any, error) {
	sessions := make([]*sftpSession, n)
	errs := make([]error, n)
	start := time.Now()
	limited(n, 50, func(i int) { sessions[i], errs[i] = sftpDial(addr, user, pass, keyFile) })
	open := 0
	for _, s := range sessions {
		if s != nil {
			open++
		}
	}
	_ = json.NewEncoder(os.Stdout).Encode(map[string]any{"ready": open, "seconds": time.Since(start).Seconds()})
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, s := range sessions {
		if s != nil {
			s.close()
		}
	}
	if open < n {
		return nil, fmt.Errorf("%d of %d sessions failed, first: %w", n-open, n, errors.Join(errs...))
	}
	return map[string]any{"ready": open}, nil
}
