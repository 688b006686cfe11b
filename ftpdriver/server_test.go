package ftpdriver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"sync"
	"testing"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
)

// fakeAuth answers logins from a table: the unit tests' stand-in for the cache and
// Django (the e2e suite runs the real ones).
type fakeAuth struct {
	mu     sync.Mutex
	grants map[string]djangoclient.Grant // "user:password" → grant
	err    error                         // returned for every login when set
	calls  []djangoclient.AuthRequest
}

func (f *fakeAuth) Authenticate(_ context.Context, r djangoclient.AuthRequest) (djangoclient.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, r)
	if f.err != nil {
		return djangoclient.Grant{}, f.err
	}
	g, ok := f.grants[r.Username+":"+r.Password]
	if !ok {
		return djangoclient.Grant{}, fmt.Errorf("auth: %w", djangoclient.ErrInvalidCredentials)
	}
	return g, nil
}

type testServer struct {
	srv    *Server
	addr   string
	home   string // alice's home
	auth   *fakeAuth
	events *recordEvents
}

// recordEvents keeps every event emitted.
type recordEvents struct {
	mu     sync.Mutex
	events []djangoclient.Event
}

func (r *recordEvents) Emit(e djangoclient.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recordEvents) all() []djangoclient.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]djangoclient.Event(nil), r.events...)
}

func testConfig() Config {
	return Config{
		PassivePortMin: 1024, PassivePortMax: 65535,
		CreateHome:       true,
		AtomicUploads:    true,
		ASCIIConversion:  true,
		MaxLineLength:    4096,
		LoginTimeout:     10 * time.Second,
		IdleTimeout:      10 * time.Second,
		DataTimeout:      5 * time.Second,
		MaxLoginAttempts: 3,
	}
}

// newTestServer serves on 127.0.0.1:0 with two users: alice (every letter) and bob
// ("elr"). It stops in t.Cleanup.
func newTestServer(t testing.TB, mutate ...func(*Config)) *testServer {
	return newTestServerLog(t, nil, mutate...)
}

// newTestServerLog is newTestServer logging to log.
func newTestServerLog(t testing.TB, log *slog.Logger, mutate ...func(*Config)) *testServer {
	t.Helper()
	cfg := testConfig()
	root := t.TempDir()
	cfg.HomeRoot = root
	for _, m := range mutate {
		m(&cfg)
	}
	auth := &fakeAuth{grants: map[string]djangoclient.Grant{
		"alice:alice-pw": {Username: "alice", Home: root + "/alice", Perms: "elradfmwMT", Welcome: "Hello alice\nSecond line"},
		"bob:bob-pw":     {Username: "bob", Home: root + "/bob", Perms: "elr"},
	}}
	events := &recordEvents{}
	srv, err := New(cfg, auth, events, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := Listen(context.Background(), "127.0.0.1:0") // as main opens it
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return &testServer{srv: srv, addr: ln.Addr().String(), home: root + "/alice", auth: auth, events: events}
}

// rawConn is a control connection driven line by line.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	tp *textproto.Conn
}

func (ts *testServer) dial(t *testing.T) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	rc := &rawConn{t: t, c: c, tp: newTextproto(c)}
	rc.expect(220)
	return rc
}

// cmd sends one line and returns the reply code and text.
func (rc *rawConn) cmd(format string, args ...any) (int, string) {
	rc.t.Helper()
	if err := rc.tp.PrintfLine(format, args...); err != nil {
		rc.t.Fatalf("send %q: %v", format, err)
	}
	return rc.read()
}

func (rc *rawConn) read() (int, string) {
	rc.t.Helper()
	code, msg, err := rc.tp.ReadResponse(0)
	if err != nil && code == 0 {
		rc.t.Fatalf("read reply: %v", err)
	}
	return code, msg
}

func newTextproto(c net.Conn) *textproto.Conn { return textproto.NewConn(c) }

func (rc *rawConn) expect(want int) string {
	rc.t.Helper()
	code, msg := rc.read()
	if code != want {
		rc.t.Fatalf("got %d %q, want %d", code, msg, want)
	}
	return msg
}

func (rc *rawConn) login(user, pass string) {
	rc.t.Helper()
	if code, msg := rc.cmd("USER %s", user); code != 331 {
		rc.t.Fatalf("USER: %d %s", code, msg)
	}
	if code, msg := rc.cmd("PASS %s", pass); code != 230 {
		rc.t.Fatalf("PASS: %d %s", code, msg)
	}
}

// closed reports whether the server closed the connection.
func (rc *rawConn) closed() bool {
	_ = rc.c.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, err := bufio.NewReader(rc.c).ReadByte()
	return err != nil && !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestLoginTimeoutCloses(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.LoginTimeout = 300 * time.Millisecond })
	rc := ts.dial(t)
	if code, _ := rc.read(); code != 421 {
		t.Fatalf("got %d, want 421 after the login timeout", code)
	}
}

func TestShutdownTellsIdleSessions(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ts.srv.Shutdown(ctx)
	}()
	if code, _ := rc.read(); code != 421 {
		t.Fatalf("got %d, want 421 on shutdown", code)
	}
}

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestShutdownLetsTransfersFinish: Shutdown stops accepting at once, lets a running
// upload finish within the grace, then ends the session with 421.
func TestShutdownLetsTransfersFinish(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("STOR during-shutdown.txt"); err != nil {
		t.Fatal(err)
	}
	data := dial()
	rc.expect(150)
	_, _ = data.Write([]byte("first half, "))

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdownDone <- ts.srv.Shutdown(ctx)
	}()
	deadline := time.Now().Add(3 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", ts.addr, time.Second)
		if err != nil {
			break // no longer accepting
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still accepting after Shutdown")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, _ = data.Write([]byte("second half"))
	data.Close()
	rc.expect(226)
	rc.expect(421)
	if err := <-shutdownDone; err != nil {
		t.Fatal(err)
	}
}

// TestShutdownGraceExpires: a transfer still running at the end of the grace is cut.
func TestShutdownGraceExpires(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("STOR never-finished.txt"); err != nil {
		t.Fatal(err)
	}
	data := dial()
	rc.expect(150)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	_ = data.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, err := data.Read(make([]byte, 1)); err == nil {
		t.Fatal("data connection still open after the grace")
	}
}
