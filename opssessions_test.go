package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/ftpdriver"
)

// startSidecar runs the whole sidecar against fakeDjango and returns the FTP address
// and the ops URL; it stops in t.Cleanup.
func startSidecar(t *testing.T) (ftpAddr, opsURL string) {
	t.Helper()
	root := t.TempDir()
	django := fakeDjango(t, root+"/alice")
	return serveEnv(t, map[string]string{
		"DJFTPD_DJANGO_URL": django.URL + "/ftp/", "DJFTPD_HOME_ROOT": root,
		"DJFTPD_LISTEN": "127.0.0.1:0", "DJFTPD_OPS_LISTEN": "127.0.0.1:0",
		"DJFTPD_PASSIVE_PORTS": "1024-65535", "DJFTPD_FAILED_LOGIN_DELAY": "1ms",
	})
}

// serveEnv runs the whole sidecar configured by env and returns the FTP address and the ops
// URL; it stops in t.Cleanup, where serve must return nil.
func serveEnv(t *testing.T, env map[string]string) (ftpAddr, opsURL string) {
	t.Helper()
	setEnv(t, env)
	cfg, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addrs := make(chan [2]net.Addr, 1)
	done := make(chan error, 1)
	go func() {
		done <- serve(ctx, cfg, discardLogger(), func(f, o net.Addr) { addrs <- [2]net.Addr{f, o} })
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	select {
	case a := <-addrs:
		return a[0].String(), "http://" + a[1].String()
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	return "", ""
}

// opsCall posts body signed for purpose and returns the status and the answer, whose
// signature it checks when the status is not 403.
func opsCall(t *testing.T, url string, purpose djangoclient.Purpose, body string, out any) int {
	t.Helper()
	resp, reqSig := signedPost(t, url, purpose, body)
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden {
		err := djangoclient.VerifyAnswer([]byte(goodSecret), purpose, resp.Header.Get(djangoclient.HeaderTimestamp),
			resp.Header.Get(djangoclient.HeaderSignature), reqSig, answer, time.Now(), djangoclient.MaxSkew)
		if err != nil {
			t.Fatalf("%s answer not signed for its request: %v", url, err)
		}
	}
	if out != nil {
		if err := json.Unmarshal(answer, out); err != nil {
			t.Fatalf("%s answer %q: %v", url, answer, err)
		}
	}
	return resp.StatusCode
}

type sessionsAnswer struct {
	OK       bool                    `json:"ok"`
	Sessions []ftpdriver.SessionInfo `json:"sessions"`
	Cursor   *string                 `json:"cursor"`
}

// uploadForever logs alice in and starts an upload that sends "partial", waits for
// more to be released, then sends until the upload fails; it returns the release
// and the upload's result.
func uploadForever(t *testing.T, ftpAddr string) (func(), <-chan error) {
	t.Helper()
	c, err := ftp.Dial(ftpAddr, ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Quit() })
	if err := c.Login("alice", "pw"); err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	more := make(chan struct{})
	go func() {
		_, err := pw.Write([]byte("partial"))
		<-more
		for err == nil {
			_, err = pw.Write([]byte("more data "))
			time.Sleep(10 * time.Millisecond)
		}
	}()
	stored := make(chan error, 1)
	go func() {
		stored <- c.Stor("cut.bin", pr)
		pr.Close()
	}()
	return func() { close(more) }, stored
}

// TestOpsSessionsListAndClose: /sessions shows a logged-in client's running upload,
// /sessions/close ends it by id (the client's upload fails, the session is gone), then
// every session of a user by username; both count in /metrics.
func TestOpsSessionsListAndClose(t *testing.T) {
	ftpAddr, opsURL := startSidecar(t)
	more, stored := uploadForever(t, ftpAddr)
	var list sessionsAnswer
	deadline := time.Now().Add(5 * time.Second)
	for {
		if code := opsCall(t, opsURL+"/sessions", djangoclient.PurposeSessions, "{}", &list); code != 200 {
			t.Fatalf("/sessions = %d", code)
		}
		if len(list.Sessions) == 1 && list.Sessions[0].Transfer != nil && list.Sessions[0].Transfer.Bytes == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session with a 7-byte upload in %+v", list)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s := list.Sessions[0]
	if !list.OK || list.Cursor != nil || s.Username == nil || *s.Username != "alice" || s.Protocol != "ftp" ||
		s.ClientIP != "127.0.0.1" || s.Transfer.Path != "/cut.bin" || s.Transfer.Command != "STOR" {
		t.Fatalf("/sessions = %+v, transfer %+v", list, s.Transfer)
	}
	var closed struct{ Closed int }
	if code := opsCall(t, opsURL+"/sessions/close", djangoclient.PurposeSessionsClose, `{"session": "`+s.ID+`"}`, &closed); code != 200 || closed.Closed != 1 {
		t.Fatalf("close by id = %d %+v", code, closed)
	}
	more()
	select {
	case err := <-stored:
		if err == nil {
			t.Fatal("the cut upload succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the client's upload still runs after the close")
	}

	idle, err := ftp.Dial(ftpAddr, ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Quit()
	if err := idle.Login("alice", "pw"); err != nil {
		t.Fatal(err)
	}
	if code := opsCall(t, opsURL+"/sessions/close", djangoclient.PurposeSessionsClose, `{"username": "alice"}`, &closed); code != 200 || closed.Closed != 1 {
		t.Fatalf("close by username = %d %+v", code, closed)
	}
	if err := idle.NoOp(); err == nil {
		t.Fatal("a closed session still answers NOOP")
	}
	if !strings.Contains(httpGet(t, opsURL+"/metrics"), `djftpd_sessions_closed_total{reason="admin"} 2`) {
		t.Fatal("/metrics does not count the two closes")
	}
}

// TestOpsSessionsRefused: unsigned, stale, other-purpose and replayed-answer calls get
// 403 unsigned; malformed bodies get a signed 400.
func TestOpsSessionsRefused(t *testing.T) {
	ftpAddr, opsURL := startSidecar(t)
	c, err := ftp.Dial(ftpAddr, ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	if err := c.Login("alice", "pw"); err != nil {
		t.Fatal(err)
	}
	endpoints := map[string]djangoclient.Purpose{
		"/sessions": djangoclient.PurposeSessions, "/sessions/close": djangoclient.PurposeSessionsClose}
	body := `{"username": "alice"}`
	for path, own := range endpoints {
		for _, p := range djangoclient.Purposes() {
			if p == own {
				continue
			}
			resp, _ := signedPost(t, opsURL+path, p, body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || resp.Header.Get(djangoclient.HeaderSignature) != "" {
				t.Fatalf("%s signed as %s: %d; want 403 unsigned", path, p, resp.StatusCode)
			}
		}
		for name, sign := range map[string]func() (string, string){
			"unsigned": func() (string, string) { return "", "" },
			"stale": func() (string, string) {
				return djangoclient.Sign([]byte(goodSecret), own, time.Now().Add(-time.Hour), []byte(body))
			},
		} {
			ts, sig := sign()
			resp := postWithSignature(t, opsURL+path, ts, sig, body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("%s %s: %d, want 403", path, name, resp.StatusCode)
			}
		}
		// A genuine answer's signature replayed as a request.
		resp, _ := signedPost(t, opsURL+"/sessions", djangoclient.PurposeSessions, "{}")
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		r := postWithSignature(t, opsURL+path, resp.Header.Get(djangoclient.HeaderTimestamp), resp.Header.Get(djangoclient.HeaderSignature), string(answer))
		r.Body.Close()
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("answer replayed to %s: %d, want 403", path, r.StatusCode)
		}
	}
	for _, tt := range []struct{ path, body string }{
		{"/sessions", `{"cursor": "nope"}`}, {"/sessions", `{"limit": 1001}`}, {"/sessions", `{"other": 1}`},
		{"/sessions/close", `{}`}, {"/sessions/close", `{"session": "a", "username": "b"}`}, {"/sessions/close", `[`},
	} {
		if code := opsCall(t, opsURL+tt.path, endpoints[tt.path], tt.body, nil); code != 400 {
			t.Fatalf("%s %s = %d, want 400", tt.path, tt.body, code)
		}
	}
	if err := c.NoOp(); err != nil {
		t.Fatalf("a refused call closed the session: %v", err)
	}
}

func FuzzOpsSessionsRequests(f *testing.F) {
	for _, s := range []string{"", "{}", `{"cursor": "1.0123456789abcdef", "limit": 5}`, `{"session": "x"}`, `{"username": "u"}`, `{"limit": -1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if req, err := parseSessionsRequest(body); err == nil && (req.Limit < 0 || req.Limit > ftpdriver.MaxSessionsPage) {
			t.Fatalf("limit %d accepted", req.Limit)
		}
		if req, err := parseCloseRequest(body); err == nil && (req.Session == "") == (req.Username == "") {
			t.Fatalf("%+v accepted", req)
		}
	})
}
