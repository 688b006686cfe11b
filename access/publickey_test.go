package access

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/djftpd/djftpd/djangoclient"
)

// keyAuth grants alice for one public key, and only when no password comes with it.
type keyAuth struct{ key, home string }

func (k keyAuth) Authenticate(_ context.Context, r djangoclient.AuthRequest) (djangoclient.Grant, error) {
	if r.Username == "alice" && r.PublicKey == k.key && r.Password == "" && r.Protocol == "sftp" {
		return djangoclient.Grant{Username: "alice", Home: k.home, Perms: "elr"}, nil
	}
	return djangoclient.Grant{}, fmt.Errorf("auth: %w", djangoclient.ErrInvalidCredentials)
}

// TestLoginWithPublicKey: a key login goes through the same path as a password one.
func TestLoginWithPublicKey(t *testing.T) {
	root := t.TempDir()
	const key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDLJqFz6jTpJoj75vQx33dXQevfztC785C/kjOCauAB+"
	core, err := New(Config{HomeRoot: root, CreateHome: true, MaxLoginAttempts: 1}, keyAuth{key, filepath.Join(root, "alice")})
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	ip := netip.MustParseAddr("192.0.2.1")
	u, err := core.Login(context.Background(), LoginRequest{Username: "alice", PublicKey: key, ClientIP: ip, Protocol: "sftp"})
	if err != nil {
		t.Fatalf("key login: %v", err)
	}
	u.Close()
	if _, err := core.Login(context.Background(), LoginRequest{Username: "alice", PublicKey: key + "x", ClientIP: ip, Protocol: "sftp"}); err == nil {
		t.Fatal("another key logged in")
	}
}

// TestValidUsername: what no protocol sends to Django.
func TestValidUsername(t *testing.T) {
	for name, ok := range map[string]bool{"alice": true, "élodie@example.com": true, "": true,
		"a\x00b": false, "a\nb": false, "\xff": false, string(make([]byte, MaxUsernameBytes+1)): false} {
		if (ValidUsername(name) == nil) != ok {
			t.Errorf("ValidUsername(%q) ok = %v, want %v", name, !ok, ok)
		}
	}
	if got := LoggedUsername("a\x00b"); got != "a\ufffdb" {
		t.Errorf("LoggedUsername = %q", got)
	}
}
