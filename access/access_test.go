package access

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
)

// grants answers "user:password" with its grant, anything else as wrong credentials:
// Django's contract, without Django (the ftpdriver and e2e suites run the real path).
type grants map[string]djangoclient.Grant

func (g grants) Authenticate(_ context.Context, r djangoclient.AuthRequest) (djangoclient.Grant, error) {
	if gr, ok := g[r.Username+":"+r.Password]; ok {
		return gr, nil
	}
	return djangoclient.Grant{}, fmt.Errorf("auth: %w", djangoclient.ErrInvalidCredentials)
}

func TestLogin(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	one := 1
	auth := grants{
		"alice:pw": {Username: "alice", Home: filepath.Join(root, "alice"), Perms: "elr", MaxSessions: &one},
		"eve:pw":   {Username: "eve", Home: "/etc"},
		"file:pw":  {Username: "file", Home: filepath.Join(root, "afile", "home")},
	}
	if err := os.WriteFile(filepath.Join(root, "afile"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	core, err := New(Config{HomeRoot: root, CreateHome: true, FailedLoginDelay: 50 * time.Millisecond,
		MaxLoginAttempts: 2, BanThreshold: 2, BanWindow: time.Minute, BanTime: time.Minute}, auth)
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	ip := netip.MustParseAddr("192.0.2.1")
	login := func(user string) (*User, error) {
		return core.Login(context.Background(), LoginRequest{Username: user, Password: "pw", ClientIP: ip, Protocol: "sftp"})
	}

	u, err := login("alice")
	if err != nil {
		t.Fatal(err)
	}
	if !u.Can('r') || u.Can('w') || u.Name() != "alice" {
		t.Fatalf("alice: r=%v w=%v name=%q", u.Can('r'), u.Can('w'), u.Name())
	}
	if _, err := u.Root().Stat("."); err != nil {
		t.Fatalf("home not created and opened: %v", err)
	}
	if _, err := login("alice"); !errors.Is(err, ErrTooManySessions) {
		t.Fatalf("second session past max_sessions 1: %v", err)
	}
	u.Close()
	u.Close() // twice is harmless
	if u2, err := login("alice"); err != nil {
		t.Fatalf("after Close the slot is free again: %v", err)
	} else {
		u2.Close()
	}
	if _, err := login("eve"); !errors.Is(err, djangoclient.ErrBadGrant) {
		t.Fatalf("home outside the root: %v, want ErrBadGrant", err)
	}
	if _, err := login("file"); !errors.Is(err, ErrHomeUnusable) || errors.Is(err, djangoclient.ErrBadGrant) {
		t.Fatalf("home under a file: %v, want ErrHomeUnusable only", err)
	}

	attempts := core.NewAttempts()
	start := time.Now()
	_, err = login("mallory")
	if !errors.Is(err, djangoclient.ErrInvalidCredentials) || errors.Is(err, ErrBanned) || time.Since(start) < 50*time.Millisecond {
		t.Fatalf("first wrong password: %v after %v", err, time.Since(start))
	}
	if attempts.Fail() {
		t.Fatal("one failure of two used them all")
	}
	if _, err = login("mallory"); !errors.Is(err, ErrBanned) || !core.Banned(ip) {
		t.Fatalf("second wrong password within the window: %v, banned %v", err, core.Banned(ip))
	}
	if !attempts.Fail() {
		t.Fatal("two failures of two did not use them all")
	}
}

// The sessions of one user share the home's open root; each session's Close releases
// its own reference once, and the root closes with the last session.
func TestLoginSharesHome(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	auth := grants{"alice:pw": {Username: "alice", Home: filepath.Join(root, "alice"), Perms: "elrw"}}
	core, err := New(Config{HomeRoot: root, CreateHome: true}, auth)
	if err != nil {
		t.Fatal(err)
	}
	defer core.Close()
	login := func() *User {
		u, err := core.Login(context.Background(), LoginRequest{Username: "alice", Password: "pw",
			ClientIP: netip.MustParseAddr("192.0.2.1"), Protocol: "ftp"})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	first, second := login(), login()
	if first.Root() == nil || first.Root() != second.Root() {
		t.Fatalf("two sessions of one home: roots %p and %p, want one shared", first.Root(), second.Root())
	}
	first.Close()
	first.Close() // a session ended twice (kicked, then its own end) releases once
	if _, err := second.Root().Stat("."); err != nil {
		t.Fatalf("the second session lost its home when the first ended: %v", err)
	}
	second.Close()
	if _, err := second.Root().Stat("."); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("the home after its last session ended: %v, want closed", err)
	}
}
