package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/djftpd/djftpd/djangoclient"
)

// sftpDjango answers like the Django app, signed: alice's password is "pw" and her key is
// key; quota (password "pw") has a quota of 8 bytes. It keeps the events it receives.
type sftpDjango struct {
	*httptest.Server
	key    string
	mu     sync.Mutex
	events []djangoclient.Event
}

func newSFTPDjango(t *testing.T, root, key string) *sftpDjango {
	t.Helper()
	d := &sftpDjango{key: key}
	d.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req map[string]any
		_ = json.Unmarshal(body, &req)
		status, answer := 401, map[string]any{"ok": false, "error": "invalid_credentials"}
		purpose := djangoclient.PurposeAuth
		if r.URL.Path == "/ftp/events/" {
			purpose = djangoclient.PurposeEvents
			var batch struct{ Events []djangoclient.Event }
			_ = json.Unmarshal(body, &batch)
			d.mu.Lock()
			d.events = append(d.events, batch.Events...)
			d.mu.Unlock()
			status, answer = 200, map[string]any{"accepted": len(batch.Events)}
		}
		_, hasPW := req["password"]
		ok := hasPW != (req["public_key"] != nil) &&
			(req["password"] == "pw" || req["public_key"] == d.key && req["username"] == "alice")
		if user, _ := req["username"].(string); r.URL.Path == "/ftp/auth/" && ok && (user == "alice" || user == "quota") {
			answer = map[string]any{"ok": true, "username": user, "home": filepath.Join(root, user),
				"perms": "elradfmwMT", "welcome": "hi", "quota_bytes": nil, "max_sessions": nil}
			if user == "quota" {
				answer["quota_bytes"] = 8
			}
			status = 200
		}
		out, _ := json.Marshal(answer)
		ts, sig := djangoclient.SignAnswer([]byte(goodSecret), purpose, time.Now(), r.Header.Get(djangoclient.HeaderSignature), out)
		w.Header().Set(djangoclient.HeaderTimestamp, ts)
		w.Header().Set(djangoclient.HeaderSignature, sig)
		w.WriteHeader(status)
		_, _ = w.Write(out)
	}))
	t.Cleanup(d.Close)
	return d
}

// protocols lists, per event type, the protocols its events carried.
func (d *sftpDjango) protocols() map[string]map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]map[string]bool{}
	for _, e := range d.events {
		if out[e.Type] == nil {
			out[e.Type] = map[string]bool{}
		}
		out[e.Type][e.Protocol] = true
	}
	return out
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestSFTPWiring runs the whole sidecar with SFTP on: password and key logins through the
// shared core, uploads, events carrying "sftp", one quota record for both protocols, and
// SFTP's failed logins banning the address for FTP too (one ban record for both).
func TestSFTPWiring(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	key := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	django := newSFTPDjango(t, root, key)
	sftpAddr := freeAddr(t)
	setEnv(t, map[string]string{
		"DJFTPD_DJANGO_URL": django.URL + "/ftp/", "DJFTPD_HOME_ROOT": root,
		"DJFTPD_LISTEN": "127.0.0.1:0", "DJFTPD_OPS_LISTEN": "127.0.0.1:0",
		"DJFTPD_PASSIVE_PORTS": "1024-65535", "DJFTPD_FAILED_LOGIN_DELAY": "1ms",
		"DJFTPD_SFTP_LISTEN": sftpAddr, "DJFTPD_STATE_DIR": state,
		"DJFTPD_MAX_LOGIN_ATTEMPTS": "2", "DJFTPD_BAN_THRESHOLD": "2",
	})
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, discardLogger(), func(f, _ net.Addr) { addrs <- f })
	}()
	var ftpAddr net.Addr
	select {
	case ftpAddr = <-addrs:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	hostKey, err := os.ReadFile(filepath.Join(state, "ssh_host_ed25519_key"))
	if err != nil {
		t.Fatal(err)
	}
	hostSigner, err := ssh.ParsePrivateKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(user string, auth ssh.AuthMethod) (*ssh.Client, error) {
		return ssh.Dial("tcp", sftpAddr, &ssh.ClientConfig{User: user, Auth: []ssh.AuthMethod{auth},
			HostKeyCallback: ssh.FixedHostKey(hostSigner.PublicKey()), Timeout: 5 * time.Second})
	}
	upload := func(user string, auth ssh.AuthMethod, name string) error {
		c, err := dial(user, auth)
		if err != nil {
			return err
		}
		defer c.Close()
		sc, err := sftp.NewClient(c)
		if err != nil {
			return err
		}
		defer sc.Close()
		f, err := sc.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
		if err != nil {
			return err
		}
		if _, err := f.Write([]byte("hello")); err != nil {
			return err
		}
		return f.Close()
	}

	if err := upload("alice", ssh.Password("pw"), "by-password"); err != nil {
		t.Fatalf("password login and upload: %v", err)
	}
	if err := upload("alice", ssh.PublicKeys(signer), "by-key"); err != nil {
		t.Fatalf("key login and upload: %v", err)
	}
	for _, name := range []string{"by-password", "by-key"} {
		if b, _ := os.ReadFile(filepath.Join(root, "alice", name)); string(b) != "hello" {
			t.Errorf("%s = %q", name, b)
		}
	}
	// The quota (8 bytes) is the core's record, shared with FTP: 5 bytes fit, 5 more do not.
	if err := upload("quota", ssh.Password("pw"), "q1"); err != nil {
		t.Errorf("upload within the quota: %v", err)
	}
	if err := upload("quota", ssh.Password("pw"), "q2"); err == nil || !strings.Contains(err.Error(), "quota") {
		t.Errorf("upload past the quota: %v, want refused naming the quota", err)
	}
	if _, err := os.Stat(filepath.Join(root, "quota", "q2")); err == nil {
		t.Error("an upload past the quota left a file")
	}
	if c, err := ftp.Dial(ftpAddr.String(), ftp.DialWithTimeout(5*time.Second)); err == nil {
		if err := c.Login("quota", "pw"); err != nil {
			t.Fatal(err)
		}
		if err := c.Stor("f3", strings.NewReader("12345")); err == nil {
			t.Error("FTP upload past the quota SFTP used accepted")
		}
		_ = c.Quit()
	}

	want := []string{djangoclient.EventConnect, djangoclient.EventLogin, djangoclient.EventFileReceived,
		djangoclient.EventLogout, djangoclient.EventDisconnect}
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, missing := django.protocols(), ""
		for _, typ := range want {
			if !got[typ]["sftp"] {
				missing = typ
			}
		}
		if missing == "" {
			for typ, ps := range got {
				if ps[""] {
					t.Errorf("%s event without a protocol", typ)
				}
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event with protocol sftp: %v", missing, got)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Two wrong passwords over SFTP ban the address, for FTP as well.
	_, _ = dial("alice", ssh.RetryableAuthMethod(ssh.Password("wrong"), 5))
	if _, err := dial("alice", ssh.Password("pw")); err == nil {
		t.Error("banned address logged in over SFTP")
	}
	if c, err := ftp.Dial(ftpAddr.String(), ftp.DialWithTimeout(5*time.Second)); err == nil {
		if err := c.Login("alice", "pw"); err == nil {
			t.Error("address banned over SFTP logged in over FTP")
		}
		_ = c.Quit()
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not stop")
	}
}

// TestConnectionLimitsShared: DJFTPD_MAX_CONNECTIONS_PER_IP counts FTP and SFTP
// connections together (one record in the core): with a limit of 1, an open SFTP
// session leaves no room for an FTP one, and the reverse.
func TestConnectionLimitsShared(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	django := newSFTPDjango(t, root, "")
	sftpAddr := freeAddr(t)
	ftpAddr, _ := serveEnv(t, map[string]string{
		"DJFTPD_DJANGO_URL": django.URL + "/ftp/", "DJFTPD_HOME_ROOT": root,
		"DJFTPD_LISTEN": "127.0.0.1:0", "DJFTPD_OPS_LISTEN": "127.0.0.1:0",
		"DJFTPD_PASSIVE_PORTS": "1024-65535", "DJFTPD_SFTP_LISTEN": sftpAddr, "DJFTPD_STATE_DIR": state,
		"DJFTPD_MAX_CONNECTIONS_PER_IP": "1",
	})
	sshDial := func() (*ssh.Client, error) {
		return ssh.Dial("tcp", sftpAddr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("pw")},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	}
	c, err := sshDial()
	if err != nil {
		t.Fatal(err)
	}
	if fc, err := ftp.Dial(ftpAddr, ftp.DialWithTimeout(5*time.Second)); err == nil {
		fc.Quit()
		t.Fatal("FTP connection accepted beside an SFTP one with a per-address limit of 1")
	}
	c.Close()
	var fc *ftp.ServerConn
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if fc, err = ftp.Dial(ftpAddr, ftp.DialWithTimeout(5*time.Second)); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("FTP refused after the SFTP session ended: %v", err)
		}
	}
	defer fc.Quit()
	if c, err := sshDial(); err == nil {
		c.Close()
		t.Fatal("SFTP connection accepted beside an FTP one with a per-address limit of 1")
	}
}

// TestOpsSessionsWithSFTP: the ops listener's live sessions list FTP and SFTP sessions
// together, page by page, and /sessions/close ends both.
func TestOpsSessionsWithSFTP(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	django := newSFTPDjango(t, root, "")
	sftpAddr := freeAddr(t)
	ftpAddr, opsURL := serveEnv(t, map[string]string{
		"DJFTPD_DJANGO_URL": django.URL + "/ftp/", "DJFTPD_HOME_ROOT": root,
		"DJFTPD_LISTEN": "127.0.0.1:0", "DJFTPD_OPS_LISTEN": "127.0.0.1:0",
		"DJFTPD_PASSIVE_PORTS": "1024-65535", "DJFTPD_SFTP_LISTEN": sftpAddr, "DJFTPD_STATE_DIR": state,
	})
	fc, err := ftp.Dial(ftpAddr, ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer fc.Quit()
	if err := fc.Login("alice", "pw"); err != nil {
		t.Fatal(err)
	}
	sc, err := ssh.Dial("tcp", sftpAddr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password("pw")},
		HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	sshDone := make(chan error, 1)
	go func() { sshDone <- sc.Wait() }()

	var page1, page2 sessionsAnswer
	opsCall(t, opsURL+"/sessions", djangoclient.PurposeSessions, `{"limit": 1}`, &page1)
	if len(page1.Sessions) != 1 || page1.Cursor == nil {
		t.Fatalf("first page: %+v", page1)
	}
	opsCall(t, opsURL+"/sessions", djangoclient.PurposeSessions, `{"cursor": "`+*page1.Cursor+`"}`, &page2)
	if len(page2.Sessions) != 1 || page2.Cursor != nil {
		t.Fatalf("second page: %+v", page2)
	}
	protocols := map[string]bool{page1.Sessions[0].Protocol: true, page2.Sessions[0].Protocol: true}
	if !protocols["ftp"] || !protocols["sftp"] {
		t.Fatalf("protocols %v, want ftp and sftp", protocols)
	}
	for _, s := range append(page1.Sessions, page2.Sessions...) {
		if s.Username == nil || *s.Username != "alice" {
			t.Errorf("session %+v without its user", s)
		}
	}
	var closed struct{ Closed int }
	opsCall(t, opsURL+"/sessions/close", djangoclient.PurposeSessionsClose, `{"username": "alice"}`, &closed)
	if closed.Closed != 2 {
		t.Fatalf("closed %d, want 2", closed.Closed)
	}
	select {
	case <-sshDone:
	case <-time.After(5 * time.Second):
		t.Fatal("SFTP session still open after /sessions/close")
	}
}

// TestSFTPMetrics: SFTP logins count in djftpd_logins_total by result and SFTP connections
// in the djftpd_sessions gauge, beside FTP's (same names and labels).
func TestSFTPMetrics(t *testing.T) {
	root, state := t.TempDir(), t.TempDir()
	django := newSFTPDjango(t, root, "")
	sftpAddr := freeAddr(t)
	_, opsURL := serveEnv(t, map[string]string{
		"DJFTPD_DJANGO_URL": django.URL + "/ftp/", "DJFTPD_HOME_ROOT": root,
		"DJFTPD_LISTEN": "127.0.0.1:0", "DJFTPD_OPS_LISTEN": "127.0.0.1:0", "DJFTPD_FAILED_LOGIN_DELAY": "1ms",
		"DJFTPD_PASSIVE_PORTS": "1024-65535", "DJFTPD_SFTP_LISTEN": sftpAddr, "DJFTPD_STATE_DIR": state,
	})
	dial := func(pw string) (*ssh.Client, error) {
		return ssh.Dial("tcp", sftpAddr, &ssh.ClientConfig{User: "alice", Auth: []ssh.AuthMethod{ssh.Password(pw)},
			HostKeyCallback: ssh.InsecureIgnoreHostKey(), Timeout: 5 * time.Second})
	}
	if c, err := dial("wrong"); err == nil {
		c.Close()
		t.Fatal("wrong password accepted")
	}
	c, err := dial("pw")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	metrics := httpGet(t, opsURL+"/metrics")
	for _, want := range []string{
		`djftpd_logins_total{result="ok"} 1`,
		`djftpd_logins_total{result="invalid_credentials"} 1`,
		"djftpd_sessions 1\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
