package sftpd

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/djftpd/djftpd/djangoclient"
)

// testGate is a Gate with one user, alice, whose password is "pw" and whose key is key.
type testGate struct {
	home     string
	perms    string // the users' letters; "": elradfmw
	key      string // authorized_keys line
	logins   atomic.Int32
	closing  bool // a failed password closes the connection
	refuse   error
	mu       sync.Mutex
	users    []*testUser
	admitted atomic.Int32
	closed   atomic.Int32
	lastPeer atomic.Value // netip.AddrPort of the last admitted connection
}

type closingErr struct{}

func (closingErr) Error() string { return "too many attempts" }
func (closingErr) Closing() bool { return true }

type testConn struct{ g *testGate }

func (g *testGate) Admit(peer netip.AddrPort) (Conn, error) {
	if g.refuse != nil {
		return nil, g.refuse
	}
	g.admitted.Add(1)
	g.lastPeer.Store(peer)
	return testConn{g}, nil
}

func (c testConn) Close() { c.g.closed.Add(1) }

func (c testConn) KeyBelongs(_ context.Context, r djangoclient.AuthRequest) bool {
	return r.Username == "alice" && r.PublicKey == c.g.key
}

func (c testConn) Login(_ context.Context, r djangoclient.AuthRequest) (User, error) {
	c.g.logins.Add(1)
	ok := r.Username == "alice" && (r.PublicKey == "" && r.Password == "pw" || r.PublicKey != "" && r.PublicKey == c.g.key)
	if !ok {
		if c.g.closing {
			return nil, closingErr{}
		}
		return nil, djangoclient.ErrInvalidCredentials
	}
	root, err := os.OpenRoot(c.g.home)
	if err != nil {
		return nil, err
	}
	perms := c.g.perms
	if perms == "" {
		perms = "elradfmw"
	}
	u := &testUser{perms: perms, root: root}
	c.g.mu.Lock()
	c.g.users = append(c.g.users, u)
	c.g.mu.Unlock()
	return u, nil
}

type testServer struct {
	srv     *Server
	addr    string
	gate    *testGate
	hostKey ssh.PublicKey
	signer  ssh.Signer // alice's key
}

func startServer(t *testing.T, cfg Config, configure func(*testGate)) *testServer {
	t.Helper()
	return startServerWrapped(t, cfg, configure, nil)
}

// startServerWrapped is startServer with the listener wrapped (wrap may be nil).
func startServerWrapped(t *testing.T, cfg Config, configure func(*testGate), wrap func(net.Listener) net.Listener) *testServer {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	must(t, err)
	hostKeys, err := LoadHostKeys(nil, t.TempDir(), nil)
	must(t, err)
	g := &testGate{home: fixture(t), key: strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))}
	if configure != nil {
		configure(g)
	}
	cfg.HostKeys = hostKeys
	srv, err := New(cfg, g)
	must(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	addr := ln.Addr().String()
	if wrap != nil {
		ln = wrap(ln)
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-served
	})
	return &testServer{srv: srv, addr: addr, gate: g, hostKey: hostKeys[0].PublicKey(), signer: signer}
}

func defaultConfig() Config {
	return Config{PasswordAuth: true, PublicKeyAuth: true, LoginTimeout: 5 * time.Second, AtomicUploads: true}
}

func (ts *testServer) dial(t *testing.T, auth ...ssh.AuthMethod) (*ssh.Client, error) {
	t.Helper()
	return ssh.Dial("tcp", ts.addr, &ssh.ClientConfig{
		User:            "alice",
		Auth:            auth,
		HostKeyCallback: ssh.FixedHostKey(ts.hostKey),
		Timeout:         5 * time.Second,
	})
}

func sftpClient(t *testing.T, c *ssh.Client) *sftp.Client {
	t.Helper()
	sc, err := sftp.NewClient(c)
	must(t, err)
	t.Cleanup(func() { sc.Close() })
	return sc
}

func TestPasswordAndKeyLogin(t *testing.T) {
	ts := startServer(t, defaultConfig(), nil)
	for name, auth := range map[string]ssh.AuthMethod{"password": ssh.Password("pw"), "key": ssh.PublicKeys(ts.signer)} {
		t.Run(name, func(t *testing.T) {
			c, err := ts.dial(t, auth)
			must(t, err)
			defer c.Close()
			sc := sftpClient(t, c)
			f, err := sc.Open("/f")
			must(t, err)
			b, _ := io.ReadAll(f)
			f.Close()
			if string(b) != "0123456789" {
				t.Fatalf("read %q", b)
			}
		})
	}
}

// TestKeyOffersDoNotLogIn: keys that are not the user's are refused without a login (no
// failed attempt counted); the user's key logs in once.
func TestKeyOffersDoNotLogIn(t *testing.T) {
	ts := startServer(t, defaultConfig(), nil)
	var others []ssh.Signer
	for range 3 {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, err := ssh.NewSignerFromKey(priv)
		must(t, err)
		others = append(others, s)
	}
	if _, err := ts.dial(t, ssh.PublicKeys(others...)); err == nil {
		t.Fatal("unknown keys logged in")
	}
	if n := ts.gate.logins.Load(); n != 0 {
		t.Fatalf("%d logins for mere key offers", n)
	}
	c, err := ts.dial(t, ssh.PublicKeys(append(others, ts.signer)...))
	must(t, err)
	c.Close()
	if n := ts.gate.logins.Load(); n != 1 {
		t.Fatalf("%d logins, want 1", n)
	}
}

func TestWrongPasswordRefused(t *testing.T) {
	ts := startServer(t, defaultConfig(), nil)
	if _, err := ts.dial(t, ssh.Password("nope")); err == nil {
		t.Fatal("wrong password logged in")
	}
}

func TestPasswordAuthOff(t *testing.T) {
	cfg := defaultConfig()
	cfg.PasswordAuth = false
	ts := startServer(t, cfg, nil)
	if _, err := ts.dial(t, ssh.Password("pw")); err == nil {
		t.Fatal("password accepted with password auth off")
	}
	if n := ts.gate.logins.Load(); n != 0 {
		t.Fatalf("%d logins", n)
	}
}

// TestClosingRefusalEndsConnection: when the core says the connection must end, it ends
// even though the client would try again.
func TestClosingRefusalEndsConnection(t *testing.T) {
	ts := startServer(t, defaultConfig(), func(g *testGate) { g.closing = true })
	tries := 0
	_, err := ts.dial(t, ssh.RetryableAuthMethod(ssh.PasswordCallback(func() (string, error) {
		tries++
		return "nope", nil
	}), 5))
	if err == nil || tries != 1 {
		t.Fatalf("err = %v after %d tries, want the connection closed after 1", err, tries)
	}
}

// TestOnlySFTP: shell, exec, port forwarding and other channels are refused.
func TestOnlySFTP(t *testing.T) {
	ts := startServer(t, defaultConfig(), nil)
	c, err := ts.dial(t, ssh.Password("pw"))
	must(t, err)
	defer c.Close()
	s, err := c.NewSession()
	must(t, err)
	if err := s.Run("id"); err == nil {
		t.Error("exec accepted")
	}
	s, err = c.NewSession()
	must(t, err)
	if err := s.Shell(); err == nil {
		t.Error("shell accepted")
	}
	if err := s.RequestSubsystem("sftp-other"); err == nil {
		t.Error("unknown subsystem accepted")
	}
	if _, err := c.Dial("tcp", ts.addr); err == nil {
		t.Error("direct-tcpip forwarding accepted")
	}
	if _, err := c.Listen("tcp", "127.0.0.1:0"); err == nil {
		t.Error("remote port forwarding accepted")
	}
	if ok, _, _ := c.SendRequest("auth-agent-req@openssh.com", true, nil); ok {
		t.Error("agent forwarding accepted")
	}
	sftpClient(t, c) // still works on the same connection
}

// TestWeakAlgorithmsRefused: a client offering only an old algorithm cannot connect.
func TestWeakAlgorithmsRefused(t *testing.T) {
	ts := startServer(t, defaultConfig(), nil)
	tests := map[string]ssh.Config{
		"cbc":               {Ciphers: []string{ssh.InsecureCipherAES128CBC}},
		"dh-group14-sha1":   {KeyExchanges: []string{ssh.InsecureKeyExchangeDH14SHA1}},
		"dh-group1-sha1":    {KeyExchanges: []string{ssh.InsecureKeyExchangeDH1SHA1}},
		"hmac-sha1":         {Ciphers: []string{ssh.CipherAES128CTR}, MACs: []string{ssh.HMACSHA1}},
		"ssh-rsa host sigs": {},
	}
	for name, algs := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("pw")}, Config: algs,
				HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second}
			if name == "ssh-rsa host sigs" {
				cfg.HostKeyAlgorithms = []string{ssh.KeyAlgoRSA}
			}
			if c, err := ssh.Dial("tcp", ts.addr, cfg); err == nil {
				c.Close()
				t.Fatal("connected")
			}
		})
	}
}

// TestLoginTimeout: a connection that does not authenticate in time is closed.
func TestLoginTimeout(t *testing.T) {
	cfg := defaultConfig()
	cfg.LoginTimeout = 200 * time.Millisecond
	ts := startServer(t, cfg, nil)
	nc, err := net.Dial("tcp", ts.addr)
	must(t, err)
	defer nc.Close()
	_ = nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, nc); err != nil {
		t.Fatalf("connection not closed by the server: %v", err)
	}
}

// TestIdleTimeout: a logged-in session that sends nothing is closed.
func TestIdleTimeout(t *testing.T) {
	cfg := defaultConfig()
	cfg.IdleTimeout = 200 * time.Millisecond
	ts := startServer(t, cfg, nil)
	c, err := ts.dial(t, ssh.Password("pw"))
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("idle session not closed")
	}
	ts.gate.mu.Lock()
	users := ts.gate.users
	ts.gate.mu.Unlock()
	if len(users) != 1 {
		t.Fatalf("%d sessions", len(users))
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		users[0].mu.Lock()
		closed := users[0].closed
		users[0].mu.Unlock()
		if closed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("session not closed in the core")
		}
	}
}

func TestAdmitRefusal(t *testing.T) {
	ts := startServer(t, defaultConfig(), func(g *testGate) { g.refuse = errors.New("banned") })
	if _, err := ts.dial(t, ssh.Password("pw")); err == nil {
		t.Fatal("refused connection logged in")
	}
}

// TestShutdownDrains: Shutdown closes idle sessions at once, waits for one with a file open
// (a transfer) until it closes the file, and closes what is left when its context ends; the
// core sees every connection closed.
func TestShutdownDrains(t *testing.T) {
	ts := startServer(t, defaultConfig(), nil)
	idle, err := ts.dial(t, ssh.Password("pw"))
	must(t, err)
	idleDone := make(chan error, 1)
	go func() { idleDone <- idle.Wait() }()
	c, err := ts.dial(t, ssh.Password("pw"))
	must(t, err)
	sc := sftpClient(t, c)
	f, err := sc.Create("/upload")
	must(t, err)
	_, err = f.Write([]byte("part"))
	must(t, err)

	shutdown := make(chan error, 1)
	go func() { shutdown <- ts.srv.Shutdown(context.Background()) }()
	select {
	case <-idleDone:
	case <-time.After(5 * time.Second):
		t.Fatal("idle session not closed by Shutdown")
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned (%v) while a transfer was running", err)
	default:
	}
	_, err = f.Write([]byte(" and the rest"))
	must(t, err)
	must(t, f.Close())
	select {
	case err := <-shutdown:
		must(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return once the transfer ended")
	}
	if b, _ := os.ReadFile(filepath.Join(ts.gate.home, "upload")); string(b) != "part and the rest" {
		t.Fatalf("upload = %q", b)
	}
	if a, cl := ts.gate.admitted.Load(), ts.gate.closed.Load(); a != cl {
		t.Fatalf("%d connections admitted, %d closed", a, cl)
	}
	if _, err := ts.dial(t, ssh.Password("pw")); err == nil {
		t.Fatal("connected after Shutdown")
	}
}

// TestShutdownDeadline: a transfer still running when the context ends is cut, and its
// upload discarded.
func TestShutdownDeadline(t *testing.T) {
	ts := startServer(t, defaultConfig(), nil)
	c, err := ts.dial(t, ssh.Password("pw"))
	must(t, err)
	sc := sftpClient(t, c)
	f, err := sc.Create("/f")
	must(t, err)
	_, err = f.Write([]byte("part"))
	must(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := ts.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown = %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(ts.gate.home, "f")); string(b) != "0123456789" {
		t.Fatalf("cut upload changed the file: %q", b)
	}
}

// TestHostKeyGeneratedOnce: the generated key is 0600 and the same on every load.
func TestHostKeyGeneratedOnce(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	a, err := LoadHostKeys(nil, dir, nil)
	must(t, err)
	b, err := LoadHostKeys(nil, dir, nil)
	must(t, err)
	if !bytes.Equal(a[0].PublicKey().Marshal(), b[0].PublicKey().Marshal()) {
		t.Fatal("a new host key after a restart")
	}
	fi, err := os.Stat(filepath.Join(dir, GeneratedHostKeyName))
	must(t, err)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	if fp := Fingerprints(a); len(fp) != 1 || !strings.HasPrefix(fp[0], "ssh-ed25519 SHA256:") {
		t.Fatalf("fingerprints %v", fp)
	}
	if _, err := LoadHostKeys(nil, "", nil); err == nil {
		t.Fatal("no key file and no state dir accepted")
	}
	if _, err := LoadHostKeys([]string{filepath.Join(dir, "missing")}, "", nil); err == nil {
		t.Fatal("missing key file accepted")
	}
}

// TestProxyProtocol: behind a trusted balancer the PROXY header's address is the
// client's; any other peer is closed before the SSH handshake, unread.
func TestProxyProtocol(t *testing.T) {
	for _, tt := range []struct {
		name    string
		trusted string
		header  string
		want    string // admitted peer address; "" = refused
	}{
		{"v1 from a trusted balancer", "127.0.0.0/8", "PROXY TCP4 192.0.2.9 127.0.0.1 5555 22\r\n", "192.0.2.9:5555"},
		{"LOCAL keeps the peer", "127.0.0.0/8", "PROXY UNKNOWN\r\n", "127.0.0.1"},
		{"untrusted peer", "10.0.0.0/8", "PROXY TCP4 192.0.2.9 127.0.0.1 5555 22\r\n", ""},
		{"no header", "127.0.0.0/8", "SSH-2.0-x\r\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := defaultConfig()
			cfg.ProxyProtocol, cfg.ProxyTrusted = true, []netip.Prefix{netip.MustParsePrefix(tt.trusted)}
			ts := startServer(t, cfg, nil)
			nc, err := net.Dial("tcp", ts.addr)
			must(t, err)
			defer nc.Close()
			_, _ = nc.Write([]byte(tt.header))
			_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
			sc, chans, reqs, err := ssh.NewClientConn(nc, ts.addr, &ssh.ClientConfig{User: "alice",
				Auth: []ssh.AuthMethod{ssh.Password("pw")}, HostKeyCallback: ssh.FixedHostKey(ts.hostKey)})
			if tt.want == "" {
				if err == nil {
					sc.Close()
					t.Fatal("connection served")
				}
				if n := ts.gate.admitted.Load(); n != 0 {
					t.Fatalf("%d connections admitted", n)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			ssh.NewClient(sc, chans, reqs).Close()
			got := ts.gate.lastPeer.Load().(netip.AddrPort)
			if got.String() != tt.want && got.Addr().String() != tt.want {
				t.Fatalf("admitted %v, want %s", got, tt.want)
			}
		})
	}
}

// TestConnsAndCloseConns: the admitted connections are listed, and closing one ends it.
func TestConnsAndCloseConns(t *testing.T) {
	ts := startServer(t, defaultConfig(), nil)
	c, err := ts.dial(t, ssh.Password("pw"))
	must(t, err)
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	if n := len(ts.srv.Conns()); n != 1 {
		t.Fatalf("%d connections listed", n)
	}
	if n := ts.srv.CloseConns(func(Conn) bool { return false }); n != 0 {
		t.Fatalf("closed %d with no match", n)
	}
	if n := ts.srv.CloseConns(func(Conn) bool { return true }); n != 1 {
		t.Fatalf("closed %d", n)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("closed connection still open")
	}
}

// TestSessionsOnOneConnection: two SFTP sessions at once on one connection (a multiplexing
// client) both work, the first after the second has ended, and a session whose client ends
// its input gets exit status 0.
func TestSessionsOnOneConnection(t *testing.T) {
	ts := startServer(t, defaultConfig(), nil)
	c, err := ts.dial(t, ssh.Password("pw"))
	must(t, err)
	defer c.Close()
	first, second := sftpClient(t, c), sftpClient(t, c)
	for i, sc := range []*sftp.Client{second, first} {
		if _, err := sc.Stat("/f"); err != nil {
			t.Fatalf("session %d: %v", i, err)
		}
		must(t, sc.Close())
	}
	ch, reqs, err := c.OpenChannel("session", nil)
	must(t, err)
	defer ch.Close()
	ok, err := ch.SendRequest("subsystem", true, ssh.Marshal(struct{ Name string }{"sftp"}))
	if err != nil || !ok {
		t.Fatalf("subsystem sftp: %v, %v", ok, err)
	}
	must(t, ch.CloseWrite())
	for req := range reqs {
		var st struct{ Status uint32 }
		if req.Type == "exit-status" && ssh.Unmarshal(req.Payload, &st) == nil && st.Status == 0 {
			return
		}
	}
	t.Fatal("channel closed without exit status 0")
}

// serverGoroutines counts the goroutines the Server's methods started (each connection's,
// each session's), from every goroutine's "created by" line.
func serverGoroutines() int {
	return strings.Count(allStacks(), "\ncreated by github.com/djftpd/djftpd/sftpd.(*")
}

func allStacks() string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestIdleSessionParks: a session silent for parkAfter with no handle open loses its
// request server (pkg/sftp's 11 goroutines: ~4.8 KB each, stack and g, most of an idle
// session's memory, bench/README.md) and keeps two goroutines of djftpd's (the connection's
// and the one waiting for the client; there were four, one per request stream, and the
// request server's); it answers again at once, keeps an open file across a silence (one
// being written keeps the request server, one being read does not: readServer serves it),
// and ends normally.
func TestIdleSessionParks(t *testing.T) {
	cfg := defaultConfig()
	cfg.parkAfter = 50 * time.Millisecond
	waitGoroutines(t, serverGoroutines, 0) // earlier tests' servers end after their Cleanup
	waitGoroutines(t, requestServerGoroutines, 0)
	ts := startServer(t, cfg, nil)
	before, beforeRS := 0, 0
	const n = 3
	var clients []*sftp.Client
	for range n {
		c, err := ts.dial(t, ssh.Password("pw"))
		must(t, err)
		t.Cleanup(func() { c.Close() })
		sc := sftpClient(t, c)
		if _, err := sc.Getwd(); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, sc)
	}
	waitGoroutines(t, requestServerGoroutines, beforeRS)
	if got := serverGoroutines() - before; got != 2*n {
		t.Fatalf("%d sftpd goroutines for %d parked sessions, want %d", got, n, 2*n)
	}
	w, err := clients[0].Create("/w") // a request server's handle open: no parking
	must(t, err)
	if _, err := clients[1].Stat("/f"); err != nil {
		t.Fatalf("stat on a parked session: %v", err)
	}
	f, err := clients[2].Open("/f") // readServer's handle: the request server parks all the same
	must(t, err)
	time.Sleep(4 * cfg.parkAfter)
	waitGoroutines(t, requestServerGoroutines, beforeRS+11)
	b, err := io.ReadAll(f)
	if err != nil || string(b) != "0123456789" {
		t.Fatalf("read after a silence: %q, %v", b, err)
	}
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatalf("write after a silence: %v", err)
	}
	must(t, f.Close())
	must(t, w.Close())
	waitGoroutines(t, requestServerGoroutines, beforeRS)
	for i, sc := range clients {
		if err := sc.Close(); err != nil {
			t.Fatalf("session %d: close: %v", i, err)
		}
	}
	waitGoroutines(t, serverGoroutines, before+n) // the connections' goroutines are left
}

// requestServerGoroutines counts the goroutines of pkg/sftp's request servers.
func requestServerGoroutines() int {
	s := allStacks()
	return strings.Count(s, "\ncreated by github.com/pkg/sftp.(*RequestServer)") +
		strings.Count(s, "\ncreated by github.com/pkg/sftp.(*packetManager)") +
		strings.Count(s, "\ncreated by github.com/pkg/sftp.newPktMgr")
}

// waitGoroutines waits until count() is want (goroutines end a little after their work).
func waitGoroutines(t *testing.T, count func() int, want int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		got := count()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines, want %d", got, want)
		}
	}
}
