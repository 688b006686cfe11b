package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/djftpd/djftpd/cache"
	"github.com/djftpd/djftpd/djangoclient"
)

type recordPurges struct {
	mu    sync.Mutex
	calls []string
}

func (r *recordPurges) Purge(u string) {
	r.mu.Lock()
	r.calls = append(r.calls, "user:"+u)
	r.mu.Unlock()
}
func (r *recordPurges) PurgeAll() { r.mu.Lock(); r.calls = append(r.calls, "all"); r.mu.Unlock() }

func newOps(t *testing.T) (*httptest.Server, *recordPurges, *atomic.Bool) {
	t.Helper()
	var ready atomic.Bool
	p := &recordPurges{}
	o := &opsHandler{ready: &ready, lastOK: &cache.Health{}, cache: p, secret: []byte(goodSecret),
		registry: newRegistry(), log: discardLogger()}
	srv := httptest.NewServer(o.handler())
	t.Cleanup(srv.Close)
	return srv, p, &ready
}

func TestHealthAndReady(t *testing.T) {
	srv, _, ready := newOps(t)
	get := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if get("/healthz") != 200 || get("/readyz") != 503 {
		t.Fatal("before ready: want healthz 200, readyz 503")
	}
	ready.Store(true)
	if get("/readyz") != 200 {
		t.Fatal("readyz not 200 once ready")
	}
}

func TestCachePurge(t *testing.T) {
	srv, purges, _ := newOps(t)
	post := func(body string, sign bool, secret string, at time.Time) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/cache/purge", strings.NewReader(body))
		if sign {
			ts, sig := djangoclient.Sign([]byte(secret), djangoclient.PurposeCachePurge, at, []byte(body))
			req.Header.Set(djangoclient.HeaderTimestamp, ts)
			req.Header.Set(djangoclient.HeaderSignature, sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	now := time.Now()
	tests := []struct {
		name   string
		body   string
		sign   bool
		secret string
		at     time.Time
		want   int
		errKey string
	}{
		{"user", `{"username": "alice"}`, true, goodSecret, now, 200, ""},
		{"all", `{"all": true}`, true, goodSecret, now, 200, ""},
		{"unsigned", `{"all": true}`, false, goodSecret, now, 403, "bad_signature"},
		{"other secret", `{"all": true}`, true, strings.Repeat("x", 32), now, 403, "bad_signature"},
		{"stale", `{"all": true}`, true, goodSecret, now.Add(-time.Hour), 403, "stale_timestamp"},
		{"bad json", `{"all": tru`, true, goodSecret, now, 400, "bad_request"},
		{"neither", `{}`, true, goodSecret, now, 400, "bad_request"},
		{"both", `{"username": "a", "all": true}`, true, goodSecret, now, 400, "bad_request"},
		{"empty user", `{"username": ""}`, true, goodSecret, now, 400, "bad_request"},
		{"too large", `{"username": "` + strings.Repeat("a", 70000) + `"}`, true, goodSecret, now, 413, "request_too_large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := post(tt.body, tt.sign, tt.secret, tt.at)
			if code != tt.want || (tt.errKey != "" && !strings.Contains(body, tt.errKey)) {
				t.Fatalf("got %d %s, want %d %s", code, body, tt.want, tt.errKey)
			}
		})
	}
	if got := strings.Join(purges.calls, ","); got != "user:alice,all" {
		t.Fatalf("purges = %s", got)
	}
	resp, err := http.Get(srv.URL + "/cache/purge")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Fatalf("GET /cache/purge = %d, want 405", resp.StatusCode)
	}
}

func TestPing(t *testing.T) {
	srv, purges, _ := newOps(t)
	for _, tt := range []struct {
		secret string
		want   int
	}{{goodSecret, 200}, {strings.Repeat("y", 32), 403}} {
		body := []byte("{}")
		ts, sig := djangoclient.Sign([]byte(tt.secret), djangoclient.PurposePing, time.Now(), body)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/ping", strings.NewReader(string(body)))
		req.Header.Set(djangoclient.HeaderTimestamp, ts)
		req.Header.Set(djangoclient.HeaderSignature, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Fatalf("ping with secret %q... = %d, want %d", tt.secret[:4], resp.StatusCode, tt.want)
		}
		if tt.want == 200 {
			err := djangoclient.VerifyAnswer([]byte(goodSecret), djangoclient.PurposePing, resp.Header.Get(djangoclient.HeaderTimestamp),
				resp.Header.Get(djangoclient.HeaderSignature), sig, answer, time.Now(), djangoclient.MaxSkew)
			if err != nil {
				t.Fatalf("ping answer not signed for its request: %v", err)
			}
		}
	}
	if len(purges.calls) != 0 {
		t.Fatal("a ping purged the cache")
	}
}

// signedPost sends body to url signed for purpose; it returns the answer and the request's
// signature.
func signedPost(t *testing.T, url string, purpose djangoclient.Purpose, body string) (*http.Response, string) {
	t.Helper()
	ts, sig := djangoclient.Sign([]byte(goodSecret), purpose, time.Now(), []byte(body))
	return postWithSignature(t, url, ts, sig, body), sig
}

func postWithSignature(t *testing.T, url, ts, sig, body string) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set(djangoclient.HeaderTimestamp, ts)
	req.Header.Set(djangoclient.HeaderSignature, sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// TestOpsSignedKindsDoNotReplay: a request signed for one ops endpoint is refused by the
// other, an answer's signature is refused as a request's, each answer verifies only as its
// own purpose's answer, and a refused request's answer is not signed.
func TestOpsSignedKindsDoNotReplay(t *testing.T) {
	srv, purges, _ := newOps(t)
	body := `{"all": true}`
	for _, tt := range []struct {
		path    string
		purpose djangoclient.Purpose
	}{{"/cache/purge", djangoclient.PurposeCachePurge}, {"/ping", djangoclient.PurposePing}} {
		for _, p := range djangoclient.Purposes() {
			resp, reqSig := signedPost(t, srv.URL+tt.path, p, body)
			answer, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if p != tt.purpose {
				if resp.StatusCode != http.StatusForbidden || resp.Header.Get(djangoclient.HeaderSignature) != "" {
					t.Fatalf("%s signed as %s: %d, signature %q; want 403 unsigned", tt.path, p, resp.StatusCode, resp.Header.Get(djangoclient.HeaderSignature))
				}
				continue
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("%s signed as %s: %d %s", tt.path, p, resp.StatusCode, answer)
			}
			ts, sig := resp.Header.Get(djangoclient.HeaderTimestamp), resp.Header.Get(djangoclient.HeaderSignature)
			for _, q := range djangoclient.Purposes() {
				err := djangoclient.VerifyAnswer([]byte(goodSecret), q, ts, sig, reqSig, answer, time.Now(), djangoclient.MaxSkew)
				if (q == p) != (err == nil) {
					t.Fatalf("%s answer verified as %s answer: %v", p, q, err)
				}
			}
			// The answer's signature replayed as a request to either endpoint.
			for _, path := range []string{"/cache/purge", "/ping"} {
				r := postWithSignature(t, srv.URL+path, ts, sig, string(answer))
				r.Body.Close()
				if r.StatusCode != http.StatusForbidden {
					t.Fatalf("%s answer replayed to %s: %d, want 403", p, path, r.StatusCode)
				}
			}
		}
	}
	if got := strings.Join(purges.calls, ","); got != "all" {
		t.Fatalf("purges = %q, want exactly one (the cache-purge request)", got)
	}
}

// lockedBuffer collects log output written from the server's goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestOpsBadSignatureLogRateLimited: a flood of badly signed requests is answered 403 each
// time but logged once, at WARN, not once per request at ERROR.
func TestOpsBadSignatureLogRateLimited(t *testing.T) {
	var logs lockedBuffer
	o := &opsHandler{ready: &atomic.Bool{}, lastOK: &cache.Health{}, cache: &recordPurges{}, secret: []byte(goodSecret),
		registry: newRegistry(), log: slog.New(slog.NewTextHandler(&logs, nil))}
	srv := httptest.NewServer(o.handler())
	t.Cleanup(srv.Close)
	for i := range 100 {
		ts, sig := djangoclient.Sign([]byte(strings.Repeat("z", 32)), djangoclient.PurposePing, time.Now(), []byte("{}"))
		resp := postWithSignature(t, srv.URL+"/ping", ts, sig, "{}")
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("request %d: %d, want 403", i, resp.StatusCode)
		}
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) > 2 || strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(lines[0], "level=WARN") {
		t.Fatalf("%d log lines for 100 bad signatures, want one or two at WARN:\n%s", len(lines), logs.String())
	}
}

// startOpsServer serves h like main does, with lim, on 127.0.0.1:0.
func startOpsServer(t *testing.T, lim opsLimits) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &opsHandler{ready: &atomic.Bool{}, lastOK: &cache.Health{}, cache: &recordPurges{}, secret: []byte(goodSecret),
		registry: newRegistry(), log: discardLogger()}
	srv := newOpsServer(o.handler(), lim)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(limitListener(ln, lim.maxConns)) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// closedWithin reports whether the server ends conn within d (read gets EOF or a reset).
func closedWithin(t *testing.T, conn net.Conn, d time.Duration) bool {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

// TestOpsSlowClientsClosed: a client that trickles its headers or never sends the body it
// announced is disconnected after the timeouts, as is an idle keep-alive connection.
func TestOpsSlowClientsClosed(t *testing.T) {
	lim := opsLimits{readHeader: 300 * time.Millisecond, read: 600 * time.Millisecond,
		write: time.Second, idle: 300 * time.Millisecond, maxConns: 8}
	addr := startOpsServer(t, lim)
	for _, tt := range []struct{ name, send string }{
		{"headers never end", "GET /healthz HTTP/1.1\r\nHost: x\r\n"},
		{"body never comes", "POST /ping HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"},
		{"idle keep-alive", "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := io.WriteString(conn, tt.send); err != nil {
				t.Fatal(err)
			}
			if !closedWithin(t, conn, 3*time.Second) {
				t.Fatal("connection still open 3 s later")
			}
		})
	}
}

// TestOpsConnectionCap: with maxConns connections held open, the next one is not served
// until one of them ends.
func TestOpsConnectionCap(t *testing.T) {
	lim := opsLimits{readHeader: time.Minute, read: time.Minute, write: time.Minute, idle: time.Minute, maxConns: 2}
	addr := startOpsServer(t, lim)
	var held []net.Conn
	for range lim.maxConns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	if _, err := io.WriteString(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	_ = extra.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, _ := extra.Read(make([]byte, 1)); n != 0 {
		t.Fatal("connection over the cap was served")
	}
	held[0].Close()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, err := io.ReadAll(extra)
	if err != nil || !strings.HasPrefix(string(answer), "HTTP/1.1 200") {
		t.Fatalf("once a slot freed: %q, %v", answer, err)
	}
}
