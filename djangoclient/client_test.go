package djangoclient

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestNewValidates(t *testing.T) {
	ok := Config{BaseURL: "http://127.0.0.1:8000/ftp/", Secret: testSecret, HomeRoot: "/srv/ftp"}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string
	}{
		{"valid", func(*Config) {}, ""},
		{"https", func(c *Config) { c.BaseURL = "https://example.com/ftp" }, ""},
		{"short secret", func(c *Config) { c.Secret = []byte("short") }, "Secret: must be at least 32 bytes, got 5"},
		{"no secret", func(c *Config) { c.Secret = nil }, "Secret: must be at least 32 bytes, got 0"},
		{"relative url", func(c *Config) { c.BaseURL = "/ftp/" }, "scheme must be http or https"},
		{"ftp url", func(c *Config) { c.BaseURL = "ftp://example.com/" }, "scheme must be http or https"},
		{"no host", func(c *Config) { c.BaseURL = "http:///ftp/" }, "no host"},
		{"query", func(c *Config) { c.BaseURL = "http://h/ftp/?x=1" }, "query or fragment"},
		{"unparsable url", func(c *Config) { c.BaseURL = "http://[::1" }, "base url"},
		{"relative home root", func(c *Config) { c.HomeRoot = "srv/ftp" }, "HomeRoot: must be an absolute directory"},
		{"empty home root", func(c *Config) { c.HomeRoot = "" }, "HomeRoot"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "Timeout: must not be negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := New(cfg, nil)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New = %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("New = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewNormalises(t *testing.T) {
	secret := append([]byte(nil), testSecret...)
	c, err := New(Config{BaseURL: "http://h:8000/ftp", Secret: secret, HomeRoot: "/srv/ftp/"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret[0] ^= 0xff // the caller's slice is not shared
	if c.authURL != "http://h:8000/ftp/auth/" || c.homeRoot != "/srv/ftp" || c.timeout != DefaultTimeout ||
		c.rc.RetryMax != DefaultMaxRetries || c.secret[0] != testSecret[0] {
		t.Fatalf("client = %+v", c)
	}
	c, err = New(Config{BaseURL: "http://h/", Secret: testSecret, HomeRoot: "/", MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.rc.RetryMax != 0 {
		t.Fatalf("MaxRetries -1: RetryMax = %d, want 0", c.rc.RetryMax)
	}
}

func TestCheckHome(t *testing.T) {
	tests := []struct {
		home, root, want string
		ok               bool
	}{
		{"/srv/ftp/alice", "/srv/ftp", "/srv/ftp/alice", true},
		{"/srv/ftp", "/srv/ftp", "/srv/ftp", true},
		{"/srv/ftp/", "/srv/ftp", "/srv/ftp", true},
		{"/srv/ftp//alice/./x/", "/srv/ftp", "/srv/ftp/alice/x", true},
		{"/srv/ftp/a/../b", "/srv/ftp", "/srv/ftp/b", true},
		{"/srv/ftp/..", "/srv/ftp", "", false},
		{"/srv/ftp-evil", "/srv/ftp", "", false},
		{"/srv/ftpx/alice", "/srv/ftp", "", false},
		{"/srv", "/srv/ftp", "", false},
		{"srv/ftp/alice", "/srv/ftp", "", false},
		{"", "/srv/ftp", "", false},
		{"/srv/ftp/a\x00b", "/srv/ftp", "", false},
		{"/anything", "/", "/anything", true},
		{"/", "/", "/", true},
	}
	for _, tt := range tests {
		got, err := checkHome(tt.home, tt.root)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("checkHome(%q, %q) = %q, %v; want %q ok=%v", tt.home, tt.root, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadGrant) {
			t.Errorf("checkHome(%q): %v does not wrap ErrBadGrant", tt.home, err)
		}
	}
}

// TestConcurrentCalls shares one client among many goroutines (run with -race).
func TestConcurrentCalls(t *testing.T) {
	f, srv := newFakeDjango(t, reply{status: 200, body: grantBody})
	c := newTestClient(t, srv.URL+"/ftp/", nil)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for range 64 {
		wg.Go(func() {
			_, err := c.Authenticate(context.Background(), testRequest)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := f.newConn.Load(); n > 64 {
		t.Fatalf("%d connections for 64 calls", n)
	}
}

// FuzzParseGrant: the answer parser never panics, every refusal wraps ErrBadGrant only, and
// every accepted grant satisfies the validation rules of DESIGN.md section 2.
func FuzzParseGrant(f *testing.F) {
	f.Add([]byte(grantBody), "/srv/ftp")
	f.Add([]byte(`{"ok":true,"username":"a","home":"/","perms":"elradfmwMT","welcome":"","ttl":0,"quota_bytes":null,"max_sessions":null}`), "/")
	f.Add([]byte(`{"ok":true,"username":"a","home":"/srv/ftp-evil","perms":"e"}`), "/srv/ftp")
	f.Add([]byte(`{"ok":true,"username":"a","home":"/srv/ftp/../x","perms":"e"}`), "/srv/ftp")
	f.Add([]byte(`{"ok":true,"username":"a","home":"/srv/ftp","perms":"e","ttl":1e99}`), "/srv/ftp")
	f.Add([]byte(`{"ok":true,"username":"a","home":"/srv/ftp","perms":"\u0000"}`), "/srv/ftp")
	f.Add([]byte(`null`), "/srv/ftp")
	f.Add([]byte(`[]`), "/srv/ftp")
	f.Fuzz(func(t *testing.T, body []byte, root string) {
		if root == "" || root[0] != '/' {
			root = "/" + root
		}
		root = cleanRoot(root)
		g, err := parseGrant(body, root)
		if err != nil {
			for _, s := range sentinels {
				if errors.Is(err, s) != (s == ErrBadGrant) {
					t.Fatalf("error %v: wrong sentinel", err)
				}
			}
			return
		}
		if g.Username == "" {
			t.Fatal("accepted an empty username")
		}
		for i := 0; i < len(g.Perms); i++ {
			if !strings.ContainsRune(PermLetters, rune(g.Perms[i])) {
				t.Fatalf("accepted perm %q", g.Perms[i])
			}
		}
		if !strings.HasPrefix(g.Home, "/") || cleanRoot(g.Home) != g.Home || strings.Contains(g.Home, "\x00") {
			t.Fatalf("accepted home %q", g.Home)
		}
		if g.Home != root && !strings.HasPrefix(g.Home, strings.TrimSuffix(root, "/")+"/") {
			t.Fatalf("accepted home %q outside %q", g.Home, root)
		}
		if g.TTL < 0 || (g.QuotaBytes != nil && *g.QuotaBytes < 0) || (g.MaxSessions != nil && *g.MaxSessions < 0) {
			t.Fatalf("accepted negative limits: %+v", g)
		}
	})
}

func cleanRoot(p string) string { return filepath.Clean(p) }
