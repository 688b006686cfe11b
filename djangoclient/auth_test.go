package djangoclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var (
	testSecret   = []byte("test-secret-test-secret-test-secret-0123")
	testHomeRoot = "/srv/ftp"
	testRequest  = AuthRequest{
		Username: "alice", Password: "s3cret pässword", ClientIP: "192.0.2.10",
		Protocol: "ftp", Session: "s-1",
	}
	sentinels = []error{ErrInvalidCredentials, ErrRejected, ErrUnavailable, ErrBadGrant}
)

// fakeDjango plays the Django app: it checks each request's signature like djftpd.signing
// does and answers with the scripted replies in order (the last one repeats).
type fakeDjango struct {
	t       *testing.T
	replies []reply
	calls   atomic.Int32
	mu      sync.Mutex
	seen    []http.Header // request headers, per attempt
	bodies  [][]byte
	newConn atomic.Int32
}

type reply struct {
	status int
	body   string
	sign   signMode
	delay  time.Duration // wait (or until the request is cancelled) before answering
	// purpose of the request answered; PurposeAuth when empty.
	purpose Purpose
}

type signMode int

const (
	signed signMode = iota
	unsigned
	forged       // signed under another secret
	stale        // signed 10 minutes ago
	otherBody    // signature over a different body
	otherRequest // answer bound to another request's signature
	requestOnly  // the request scheme: no request signature, no "-answer"
	otherPurpose // a genuine answer to this request, but for another purpose
)

func (f *fakeDjango) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(f.calls.Add(1)) - 1
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.seen = append(f.seen, r.Header.Clone())
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/ftp/auth/" {
		f.t.Errorf("request %s %s, want POST /ftp/auth/", r.Method, r.URL.Path)
	}
	if err := Verify(testSecret, PurposeAuth, r.Header.Get(HeaderTimestamp), r.Header.Get(HeaderSignature), body, time.Now(), MaxSkew); err != nil {
		f.t.Errorf("attempt %d: request signature: %v", n, err)
	}
	rep := f.replies[min(n, len(f.replies)-1)]
	if rep.delay > 0 {
		select {
		case <-time.After(rep.delay):
		case <-r.Context().Done():
			return
		}
	}
	writeReply(w, r.Header.Get(HeaderSignature), rep)
}

// writeReply answers like Django: signed over the answer body and the request's signature
// reqSig for rep.purpose, or wrongly as rep.sign says.
func writeReply(w http.ResponseWriter, reqSig string, rep reply) {
	body := []byte(rep.body)
	p, other := rep.purpose, PurposeEvents
	if p == "" {
		p = PurposeAuth
	}
	if p == PurposeEvents {
		other = PurposeAuth
	}
	var ts, sig string
	switch rep.sign {
	case signed:
		ts, sig = SignAnswer(testSecret, p, time.Now(), reqSig, body)
	case forged:
		ts, sig = SignAnswer([]byte("forged-secret-forged-secret-forged-000"), p, time.Now(), reqSig, body)
	case stale:
		ts, sig = SignAnswer(testSecret, p, time.Now().Add(-10*time.Minute), reqSig, body)
	case otherBody:
		ts, sig = SignAnswer(testSecret, p, time.Now(), reqSig, []byte(`{"ok":true}`))
	case otherRequest:
		_, otherSig := Sign(testSecret, p, time.Now(), []byte(`{"username":"mallory"}`))
		ts, sig = SignAnswer(testSecret, p, time.Now(), otherSig, body)
	case requestOnly:
		ts, sig = Sign(testSecret, p, time.Now(), body)
	case otherPurpose:
		ts, sig = SignAnswer(testSecret, other, time.Now(), reqSig, body)
	}
	if rep.sign != unsigned {
		w.Header().Set(HeaderTimestamp, ts)
		w.Header().Set(HeaderSignature, sig)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(rep.status)
	_, _ = w.Write(body)
}

func newFakeDjango(t *testing.T, replies ...reply) (*fakeDjango, *httptest.Server) {
	t.Helper()
	f := &fakeDjango{t: t, replies: replies}
	srv := httptest.NewUnstartedServer(f)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.newConn.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return f, srv
}

func newTestClient(t *testing.T, baseURL string, edit func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: baseURL, Secret: testSecret, HomeRoot: testHomeRoot, Timeout: 2 * time.Second}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// checkSentinel asserts err wraps want and no other sentinel (want nil: err is nil).
func checkSentinel(t *testing.T, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("err = %v, want nil", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("err = nil, want %v", want)
	}
	for _, s := range sentinels {
		if got := errors.Is(err, s); got != (s == want) {
			t.Fatalf("err = %q: errors.Is(%q) = %v", err, s, got)
		}
	}
	if msg := err.Error(); msg != strings.ToLower(msg[:1])+msg[1:] || strings.HasSuffix(msg, ".") {
		t.Errorf("error %q: want lower-case context without final period", msg)
	}
}

const grantBody = `{"ok": true, "username": "Alice", "home": "/srv/ftp/alice", "perms": "elr",
	"welcome": "Hello\nAlice", "ttl": 30, "quota_bytes": 1048576, "max_sessions": 2}`

func TestAuthenticateGrant(t *testing.T) {
	f, srv := newFakeDjango(t, reply{status: 200, body: grantBody})
	c := newTestClient(t, srv.URL+"/ftp", nil) // no final slash: normalised

	g, err := c.Authenticate(context.Background(), testRequest)
	checkSentinel(t, err, nil)
	if g.Username != "Alice" || g.Home != "/srv/ftp/alice" || g.Perms != "elr" ||
		g.Welcome != "Hello\nAlice" || g.TTL != 30*time.Second ||
		g.QuotaBytes == nil || *g.QuotaBytes != 1048576 || g.MaxSessions == nil || *g.MaxSessions != 2 {
		t.Fatalf("grant = %+v", g)
	}

	// The request: signed (checked by fakeDjango), JSON, and the body is the AuthRequest.
	h := f.seen[0]
	if h.Get("Content-Type") != "application/json" {
		t.Errorf("Content-Type = %q", h.Get("Content-Type"))
	}
	if ts, sig := h.Get(HeaderTimestamp), h.Get(HeaderSignature); ts == "" || !strings.HasPrefix(sig, "v2=") || len(sig) != 3+64 {
		t.Errorf("signature headers %q %q", ts, sig)
	}
	var sent AuthRequest
	if err := json.Unmarshal(f.bodies[0], &sent); err != nil || sent != testRequest {
		t.Errorf("request body %s (%v), want %+v", f.bodies[0], err, testRequest)
	}
}

func TestAuthenticateNullableFields(t *testing.T) {
	_, srv := newFakeDjango(t, reply{status: 200, body: `{"ok":true,"username":"bob","home":"/srv/ftp/bob/","perms":"","welcome":"","quota_bytes":null,"max_sessions":null}`})
	g, err := newTestClient(t, srv.URL+"/ftp/", nil).Authenticate(context.Background(), testRequest)
	checkSentinel(t, err, nil)
	if g.Home != "/srv/ftp/bob" || g.TTL != 0 || g.NoCache || g.QuotaBytes != nil || g.MaxSessions != nil || g.Perms != "" {
		t.Fatalf("grant = %+v", g)
	}
}

// TestGrantTTL: "ttl": 0 means do not cache (NoCache), not the sidecar's default; an absent
// ttl means the default.
func TestGrantTTL(t *testing.T) {
	for _, tt := range []struct {
		ttl     string
		want    time.Duration
		noCache bool
	}{
		{``, 0, false},
		{`,"ttl":null`, 0, false},
		{`,"ttl":0`, 0, true},
		{`,"ttl":30`, 30 * time.Second, false},
	} {
		g, err := parseGrant([]byte(`{"ok":true,"username":"a","home":"/srv/ftp","perms":"e"`+tt.ttl+`}`), testHomeRoot)
		if err != nil || g.TTL != tt.want || g.NoCache != tt.noCache {
			t.Errorf("ttl %q: grant %+v, err %v; want TTL %s, NoCache %v", tt.ttl, g, err, tt.want, tt.noCache)
		}
	}
}

func TestAuthenticateAnswers(t *testing.T) {
	big := `{"ok":true,"username":"a","home":"/srv/ftp","perms":"","welcome":"` + strings.Repeat("x", MaxBodyBytes) + `"}`
	tests := []struct {
		name      string
		reply     reply
		want      error
		wantCalls int32
		wantInMsg string
	}{
		{"401 signed", reply{status: 401, body: `{"ok":false,"error":"invalid_credentials"}`}, ErrInvalidCredentials, 1, "401"},
		{"401 unsigned", reply{status: 401, body: `{"ok":false}`, sign: unsigned}, ErrRejected, 1, "signature"},
		{"403 bad_signature", reply{status: 403, body: `{"ok":false,"error":"bad_signature"}`, sign: unsigned}, ErrRejected, 1, "bad_signature"},
		{"403 stale_timestamp", reply{status: 403, body: `{"ok":false,"error":"stale_timestamp"}`}, ErrRejected, 1, "stale_timestamp"},
		{"403 without body", reply{status: 403, sign: unsigned}, ErrRejected, 1, "403"},
		{"400 not retried", reply{status: 400, body: `{"ok":false,"error":"bad_request","detail":"x"}`}, ErrRejected, 1, "400"},
		{"404", reply{status: 404, body: "<html>", sign: unsigned}, ErrRejected, 1, "404"},
		{"405", reply{status: 405, sign: unsigned}, ErrRejected, 1, "405"},
		{"413", reply{status: 413, sign: unsigned}, ErrRejected, 1, "413"},
		{"429 not retried", reply{status: 429, sign: unsigned}, ErrRejected, 1, "429"},
		{"301 not followed", reply{status: 301, sign: unsigned}, ErrRejected, 1, "301"},
		{"500 forever", reply{status: 500, sign: unsigned}, ErrUnavailable, 4, "500"},
		{"503 forever", reply{status: 503, sign: unsigned}, ErrUnavailable, 4, "503"},
		{"200 unsigned", reply{status: 200, body: grantBody, sign: unsigned}, ErrRejected, 1, "missing"},
		{"200 forged", reply{status: 200, body: grantBody, sign: forged}, ErrRejected, 1, "mismatch"},
		{"200 signature of another body", reply{status: 200, body: grantBody, sign: otherBody}, ErrRejected, 1, "mismatch"},
		{"200 stale", reply{status: 200, body: grantBody, sign: stale}, ErrRejected, 1, "stale"},
		{"200 bound to another request", reply{status: 200, body: grantBody, sign: otherRequest}, ErrRejected, 1, "mismatch"},
		{"200 signed without the request", reply{status: 200, body: grantBody, sign: requestOnly}, ErrRejected, 1, "mismatch"},
		{"200 signed as an events answer", reply{status: 200, body: grantBody, sign: otherPurpose}, ErrRejected, 1, "mismatch"},
		{"401 signed as an events answer", reply{status: 401, body: `{"ok":false,"error":"invalid_credentials"}`, sign: otherPurpose}, ErrRejected, 1, "mismatch"},
		{"401 bound to another request", reply{status: 401, body: `{"ok":false,"error":"invalid_credentials"}`, sign: otherRequest}, ErrRejected, 1, "mismatch"},
		{"200 over 64 KiB", reply{status: 200, body: big}, ErrBadGrant, 1, "64"},
		{"unknown perm letter", reply{status: 200, body: `{"ok":true,"username":"a","home":"/srv/ftp/a","perms":"elrX","welcome":""}`}, ErrBadGrant, 1, "perm"},
		{"relative home", reply{status: 200, body: `{"ok":true,"username":"a","home":"srv/ftp/a","perms":"elr","welcome":""}`}, ErrBadGrant, 1, "absolute"},
		{"home outside root", reply{status: 200, body: `{"ok":true,"username":"a","home":"/etc","perms":"elr","welcome":""}`}, ErrBadGrant, 1, "outside"},
		{"home prefix trick", reply{status: 200, body: `{"ok":true,"username":"a","home":"/srv/ftp-evil/a","perms":"elr","welcome":""}`}, ErrBadGrant, 1, "outside"},
		{"home dotdot escape", reply{status: 200, body: `{"ok":true,"username":"a","home":"/srv/ftp/../etc","perms":"elr","welcome":""}`}, ErrBadGrant, 1, "outside"},
		{"bad json", reply{status: 200, body: `{"ok":true,`}, ErrBadGrant, 1, "decode"},
		{"trailing json", reply{status: 200, body: `{"ok":true,"username":"a","home":"/srv/ftp","perms":""} {}`}, ErrBadGrant, 1, "trailing"},
		{"ok false", reply{status: 200, body: `{"ok":false,"username":"a","home":"/srv/ftp","perms":""}`}, ErrBadGrant, 1, "ok"},
		{"empty username", reply{status: 200, body: `{"ok":true,"username":"","home":"/srv/ftp","perms":""}`}, ErrBadGrant, 1, "username"},
		{"negative ttl", reply{status: 200, body: `{"ok":true,"username":"a","home":"/srv/ftp","perms":"","ttl":-1}`}, ErrBadGrant, 1, "ttl"},
		{"overflowing ttl", reply{status: 200, body: `{"ok":true,"username":"a","home":"/srv/ftp","perms":"","ttl":9223372036854775807}`}, ErrBadGrant, 1, "ttl"},
		{"negative quota", reply{status: 200, body: `{"ok":true,"username":"a","home":"/srv/ftp","perms":"","quota_bytes":-5}`}, ErrBadGrant, 1, "quota"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, srv := newFakeDjango(t, tt.reply)
			c := newTestClient(t, srv.URL+"/ftp/", nil)
			_, err := c.Authenticate(context.Background(), testRequest)
			checkSentinel(t, err, tt.want)
			if !strings.Contains(err.Error(), tt.wantInMsg) {
				t.Errorf("err = %q, want it to mention %q", err, tt.wantInMsg)
			}
			if got := f.calls.Load(); got != tt.wantCalls {
				t.Errorf("%d calls, want %d", got, tt.wantCalls)
			}
		})
	}
}

// TestRetryIsSignedAfresh: a 500 is retried, and the retry carries its own valid signature
// with a newer timestamp (the client's clock is advanced between attempts).
func TestRetryIsSignedAfresh(t *testing.T) {
	f, srv := newFakeDjango(t, reply{status: 500, sign: unsigned}, reply{status: 200, body: grantBody})
	c := newTestClient(t, srv.URL+"/ftp/", nil)
	var tick atomic.Int64
	base := time.Now()
	c.now = func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Second) }

	if _, err := c.Authenticate(context.Background(), testRequest); err != nil {
		t.Fatal(err)
	}
	if f.calls.Load() != 2 {
		t.Fatalf("%d calls, want 2", f.calls.Load())
	}
	ts0, _ := strconv.ParseInt(f.seen[0].Get(HeaderTimestamp), 10, 64)
	ts1, _ := strconv.ParseInt(f.seen[1].Get(HeaderTimestamp), 10, 64)
	if ts1 <= ts0 || f.seen[0].Get(HeaderSignature) == f.seen[1].Get(HeaderSignature) {
		t.Fatalf("retry timestamps %d then %d: want a fresh signature", ts0, ts1)
	}
	if !bytes.Equal(f.bodies[0], f.bodies[1]) {
		t.Fatalf("retry body differs: %s vs %s", f.bodies[0], f.bodies[1])
	}
}

// TestReplayedAnswerRejected: a genuine signed 200, recorded and replayed verbatim as the
// answer to a later request (a fresh timestamp, well within MaxSkew), is refused.
func TestReplayedAnswerRejected(t *testing.T) {
	var (
		mu       sync.Mutex
		recorded http.Header
		calls    int
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if recorded == nil {
			rec := httptest.NewRecorder()
			writeReply(rec, r.Header.Get(HeaderSignature), reply{status: 200, body: grantBody})
			recorded = rec.Header().Clone()
		}
		for k, v := range recorded {
			w.Header()[k] = v
		}
		w.WriteHeader(200)
		_, _ = io.WriteString(w, grantBody)
	}))
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL+"/ftp/", nil)
	if _, err := c.Authenticate(context.Background(), testRequest); err != nil {
		t.Fatalf("first (genuine) answer: %v", err)
	}
	other := testRequest
	other.Password = "wrong"
	_, err := c.Authenticate(context.Background(), other)
	checkSentinel(t, err, ErrRejected)
	if !strings.Contains(err.Error(), "mismatch") {
		t.Errorf("err = %q, want a signature mismatch", err)
	}
}

// TestRetryAnswerBoundToItsAttempt: after a retry, the answer must be bound to the retry's
// own signature; one bound to the first attempt's signature is refused, one bound to the
// retry's is accepted.
func TestRetryAnswerBoundToItsAttempt(t *testing.T) {
	for _, bindFirst := range []bool{false, true} {
		var (
			mu       sync.Mutex
			firstSig string
			n        int
		)
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			defer mu.Unlock()
			n++
			if n == 1 {
				firstSig = r.Header.Get(HeaderSignature)
				w.WriteHeader(503)
				return
			}
			sig := r.Header.Get(HeaderSignature)
			if sig == firstSig {
				t.Errorf("retry reused the first attempt's signature")
			}
			if bindFirst {
				sig = firstSig
			}
			writeReply(w, sig, reply{status: 200, body: grantBody})
		}))
		c := newTestClient(t, srv.URL+"/ftp/", nil)
		var tick atomic.Int64
		base := time.Now()
		c.now = func() time.Time { return base.Add(time.Duration(tick.Add(1)) * time.Second) }
		_, err := c.Authenticate(context.Background(), testRequest)
		srv.Close()
		if bindFirst {
			checkSentinel(t, err, ErrRejected)
		} else {
			checkSentinel(t, err, nil)
		}
	}
}

// TestUnavailableWithinBudget: with retries to spare, a dead Django still ends the call
// within Timeout.
func TestUnavailableWithinBudget(t *testing.T) {
	f, srv := newFakeDjango(t, reply{status: 502, sign: unsigned})
	c := newTestClient(t, srv.URL+"/ftp/", func(cfg *Config) {
		cfg.Timeout = 300 * time.Millisecond
		cfg.MaxRetries = 1000
	})
	start := time.Now()
	_, err := c.Authenticate(context.Background(), testRequest)
	checkSentinel(t, err, ErrUnavailable)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s, budget 300ms", d)
	}
	if f.calls.Load() < 2 {
		t.Fatalf("%d calls: want retries", f.calls.Load())
	}
}

func TestConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var buf syncBuffer
	c, err := New(Config{BaseURL: "http://" + addr + "/ftp/", Secret: testSecret, HomeRoot: testHomeRoot, Timeout: 2 * time.Second},
		slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Authenticate(context.Background(), testRequest)
	checkSentinel(t, err, ErrUnavailable)
	if !strings.Contains(err.Error(), "4 attempts") {
		t.Errorf("err = %q: want the refused connection retried", err)
	}
}

func TestSlowServerTimesOut(t *testing.T) {
	_, srv := newFakeDjango(t, reply{status: 200, body: grantBody, delay: 10 * time.Second})
	c := newTestClient(t, srv.URL+"/ftp/", func(cfg *Config) { cfg.Timeout = 200 * time.Millisecond })
	start := time.Now()
	_, err := c.Authenticate(context.Background(), testRequest)
	checkSentinel(t, err, ErrUnavailable)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s, budget 200ms", d)
	}
	if errors.Is(err, context.Canceled) {
		t.Errorf("err = %v: the caller did not cancel", err)
	}
}

func TestContextCancel(t *testing.T) {
	_, srv := newFakeDjango(t, reply{status: 200, body: grantBody, delay: 10 * time.Second})
	c := newTestClient(t, srv.URL+"/ftp/", func(cfg *Config) { cfg.Timeout = 10 * time.Second })
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := c.Authenticate(ctx, testRequest)
	checkSentinel(t, err, ErrUnavailable)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want it to wrap context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s after cancel", d)
	}
}

// TestKeepAlive: sequential calls reuse one connection.
func TestKeepAlive(t *testing.T) {
	f, srv := newFakeDjango(t, reply{status: 200, body: grantBody})
	c := newTestClient(t, srv.URL+"/ftp/", nil)
	for range 10 {
		if _, err := c.Authenticate(context.Background(), testRequest); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.newConn.Load(); n != 1 {
		t.Fatalf("%d connections for 10 calls, want 1", n)
	}
}

// TestLogsHoldNoSecrets: DEBUG logs of a retried call name neither the password, the secret
// nor a signature.
func TestLogsHoldNoSecrets(t *testing.T) {
	f, srv := newFakeDjango(t, reply{status: 500, sign: unsigned}, reply{status: 200, body: grantBody})
	var buf syncBuffer
	c, err := New(Config{BaseURL: srv.URL + "/ftp/", Secret: testSecret, HomeRoot: testHomeRoot},
		slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Authenticate(context.Background(), testRequest); err != nil {
		t.Fatal(err)
	}
	logs := buf.String()
	if !strings.Contains(logs, "retrying") {
		t.Fatalf("expected retry logs, got:\n%s", logs)
	}
	for _, secret := range []string{testRequest.Password, string(testSecret),
		strings.TrimPrefix(f.seen[0].Get(HeaderSignature), "v2="), strings.TrimPrefix(f.seen[1].Get(HeaderSignature), "v2=")} {
		if strings.Contains(logs, secret) {
			t.Fatalf("logs contain %q:\n%s", secret, logs)
		}
	}
	if strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "level=WARN") {
		t.Fatalf("retryablehttp logs must stay at DEBUG:\n%s", logs)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
