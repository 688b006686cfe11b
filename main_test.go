package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"

	"github.com/djftpd/djftpd/djangoclient"
)

// fakeDjango answers the auth endpoint like the Django app does, signed; alice's
// password is "pw". It stands in for Django in this wiring test (e2e/ runs the real one).
func fakeDjango(t *testing.T, home string) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var req djangoclient.AuthRequest
		_ = json.Unmarshal(body, &req)
		status, answer := 401, map[string]any{"ok": false, "error": "invalid_credentials"}
		var batch struct{ Events []djangoclient.Event }
		if r.URL.Path == "/ftp/events/" && json.Unmarshal(body, &batch) == nil {
			status, answer = 200, map[string]any{"accepted": len(batch.Events)}
		}
		if r.URL.Path == "/ftp/auth/" && req.Username == "alice" && req.Password == "pw" {
			status, answer = 200, map[string]any{"ok": true, "username": "alice", "home": home,
				"perms": "elradfmwMT", "welcome": "hi", "quota_bytes": nil, "max_sessions": nil}
		}
		out, _ := json.Marshal(answer)
		purpose := djangoclient.PurposeAuth
		if r.URL.Path == "/ftp/events/" {
			purpose = djangoclient.PurposeEvents
		}
		ts, sig := djangoclient.SignAnswer([]byte(goodSecret), purpose, time.Now(), r.Header.Get(djangoclient.HeaderSignature), out)
		w.Header().Set(djangoclient.HeaderTimestamp, ts)
		w.Header().Set(djangoclient.HeaderSignature, sig)
		w.WriteHeader(status)
		_, _ = w.Write(out)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestServeWiring runs the whole sidecar (config → cache → client → FTP → ops) and
// checks that /metrics moves after a login and a transfer, and that SIGTERM's context
// cancellation stops it cleanly.
func TestServeWiring(t *testing.T) {
	root := t.TempDir()
	django := fakeDjango(t, root+"/alice")
	setEnv(t, map[string]string{
		"DJFTPD_DJANGO_URL": django.URL + "/ftp/", "DJFTPD_HOME_ROOT": root,
		"DJFTPD_LISTEN": "127.0.0.1:0", "DJFTPD_OPS_LISTEN": "127.0.0.1:0",
		"DJFTPD_PASSIVE_PORTS": "1024-65535", "DJFTPD_FAILED_LOGIN_DELAY": "1ms",
	})
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
	var a [2]net.Addr
	select {
	case a = <-addrs:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	ftpAddr, opsURL := a[0].String(), "http://"+a[1].String()

	for i := range 2 { // the second login is a cache hit
		c, err := ftp.Dial(ftpAddr, ftp.DialWithTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Login("alice", "pw"); err != nil {
			t.Fatalf("login %d: %v", i, err)
		}
		if err := c.Stor("f.txt", strings.NewReader("hello")); err != nil {
			t.Fatal(err)
		}
		_ = c.Quit()
	}
	if c, err := ftp.Dial(ftpAddr); err == nil {
		if err := c.Login("alice", "wrong"); err == nil {
			t.Fatal("wrong password accepted")
		}
		_ = c.Quit()
	}

	metrics := httpGet(t, opsURL+"/metrics")
	for _, want := range []string{
		`djftpd_logins_total{result="ok"} 2`,
		`djftpd_logins_total{result="invalid_credentials"} 1`,
		`djftpd_auth_cache_lookups_total{result="hit"} 1`,
		`djftpd_auth_cache_lookups_total{result="miss"} 2`,
		`djftpd_auth_requests_total{outcome="ok"} 1`,
		`djftpd_auth_requests_total{outcome="invalid_credentials"} 1`,
		`djftpd_transfers_total{direction="upload",result="complete"} 2`,
		`djftpd_transfer_bytes_total{direction="upload"} 10`,
		`djftpd_auth_request_duration_seconds_count 2`,
		"djftpd_sessions ",
		"djftpd_events_poison_dropped_total 0\n",
		"djftpd_events_rejected_total 0\n",
		"djftpd_event_spool_torn_bytes_total 0\n",
		"djftpd_connections_refused_total",
		`djftpd_accept_errors_total{listener="sftp"} 0`,
		"process_resident_memory_bytes",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	// Events flow to Django within the flush interval.
	deadline := time.Now().Add(5 * time.Second)
	for strings.Contains(httpGet(t, opsURL+"/metrics"), "djftpd_events_delivered_total 0\n") {
		if time.Now().After(deadline) {
			t.Fatal("no event was delivered to Django")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := httpGet(t, opsURL+"/readyz"); got != "ready\n" {
		t.Errorf("/readyz = %q", got)
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

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
