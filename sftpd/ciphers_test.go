package sftpd

import (
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// TestChaChaNotOffered: chacha20-poly1305 is not negotiated (it costs the server far more
// CPU than AES in Go on amd64); a client that prefers it, as OpenSSH's do, falls back to
// AES, and one that offers nothing else cannot connect.
func TestChaChaNotOffered(t *testing.T) {
	ts := startServer(t, defaultConfig(), nil)
	tests := []struct {
		name    string
		ciphers []string
		ok      bool
	}{
		{"chacha only", []string{ssh.CipherChaCha20Poly1305}, false},
		{"chacha first, as OpenSSH", []string{ssh.CipherChaCha20Poly1305, ssh.CipherAES128CTR, ssh.CipherAES128GCM}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("pw")},
				Config: ssh.Config{Ciphers: tt.ciphers}, HostKeyCallback: ssh.FixedHostKey(ts.hostKey), Timeout: 5 * time.Second})
			if err == nil {
				c.Close()
			}
			if (err == nil) != tt.ok {
				t.Fatalf("connected: %v, want %v (err %v)", err == nil, tt.ok, err)
			}
		})
	}
}
