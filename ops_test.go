package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	o := &ops{ready: &ready, lastOK: &lastSuccess{}, cache: p, secret: []byte(goodSecret),
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
			ts, sig := djangoclient.Sign([]byte(secret), at, []byte(body))
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
		{"too large", `{"username": "` + strings.Repeat("a", 70000) + `"}`, true, goodSecret, now, 413, "too_large"},
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
		ts, sig := djangoclient.Sign([]byte(tt.secret), time.Now(), body)
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
			err := djangoclient.VerifyAnswer([]byte(goodSecret), resp.Header.Get(djangoclient.HeaderTimestamp),
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

func TestReadyFollowsDjango(t *testing.T) {
	now := time.Now()
	var l lastSuccess
	if !l.healthy(now) {
		t.Fatal("a sidecar that never asked Django is not ready")
	}
	l.mark(now.Add(-time.Hour))
	l.markFailed(now.Add(-time.Minute))
	if l.healthy(now) {
		t.Fatal("ready although Django failed after its last answer an hour ago")
	}
	l.mark(now)
	if !l.healthy(now) {
		t.Fatal("not ready after Django answered")
	}
	l.markFailed(now.Add(time.Second))
	if !l.healthy(now.Add(time.Second)) {
		t.Fatal("one failure right after an answer made it unready")
	}
}
