// Package djangoclient is djftpd's side of the wire protocol with the Django app (DESIGN.md
// section 2): it signs requests to {DJANGO_URL}auth/, retries what is worth retrying inside one
// time budget, verifies the signature of every answer it trusts and turns the answer into a
// Grant or into exactly one of the sentinel errors ErrInvalidCredentials, ErrRejected,
// ErrUnavailable and ErrBadGrant.
//
// Sign, Verify, SignAnswer and VerifyAnswer implement the shared HMAC scheme for requests and
// for the answers bound to them, for other endpoints too (the sidecar's /cache/purge verifies
// Django's requests with Verify). EventQueue delivers FTP events to {DJANGO_URL}events/ with
// the same signing. Its one ownership rule: every event lives in the backlog — the spool on
// disk when there is one, else memory — from Emit until Django acknowledges it.
package djangoclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Defaults and limits of the client.
const (
	// DefaultTimeout is the budget of one Authenticate call, retries included.
	DefaultTimeout = 5 * time.Second
	// DefaultMaxRetries is the number of retries after the first attempt.
	DefaultMaxRetries = 3
	// MinSecretLen is the shortest accepted shared secret, in bytes (Django's check djftpd.E002).
	MinSecretLen = 32
	// MaxBodyBytes bounds every answer body that is read; a longer answer is refused.
	MaxBodyBytes = 64 << 10

	retryWaitMin = 50 * time.Millisecond
	retryWaitMax = 1 * time.Second
)

// Config configures a Client. Build it as a literal; New validates it.
type Config struct {
	// BaseURL is where the djftpd Django app is mounted, for example
	// "http://127.0.0.1:8000/ftp/". It must be an absolute http or https URL without query or
	// fragment; a missing final slash is added.
	BaseURL string
	// Secret is the shared signing secret, at least MinSecretLen bytes. New copies it.
	Secret []byte
	// HomeRoot is the absolute directory every granted home must be inside (or equal to).
	HomeRoot string
	// Timeout bounds one Authenticate call including retries and backoff; zero means
	// DefaultTimeout.
	Timeout time.Duration
	// MaxRetries is the number of retries after a first failed attempt; zero means
	// DefaultMaxRetries and a negative value disables retries.
	MaxRetries int
}

// Client talks to the Django app. It is safe for concurrent use; all calls share one
// connection pool. It starts no goroutine of its own.
type Client struct {
	authURL   string
	eventsURL string
	secret    []byte
	homeRoot  string
	timeout   time.Duration
	rc        *retryablehttp.Client
	log       *slog.Logger
	now       func() time.Time
}

// ConfigError is an invalid Config field. Field is its Go name, so that the caller
// can name where the value came from (main names the environment variable).
type ConfigError struct {
	Field  string
	Reason string
}

func (e *ConfigError) Error() string { return e.Field + ": " + e.Reason }

// Validate checks cfg; New calls it. Errors are *ConfigError.
func (cfg Config) Validate() error {
	if _, err := normaliseBaseURL(cfg.BaseURL); err != nil {
		return &ConfigError{"BaseURL", err.Error()}
	}
	if len(cfg.Secret) < MinSecretLen {
		return &ConfigError{"Secret", fmt.Sprintf("must be at least %d bytes, got %d", MinSecretLen, len(cfg.Secret))}
	}
	if !filepath.IsAbs(cfg.HomeRoot) {
		return &ConfigError{"HomeRoot", fmt.Sprintf("must be an absolute directory, got %q", cfg.HomeRoot)}
	}
	if cfg.Timeout < 0 {
		return &ConfigError{"Timeout", "must not be negative"}
	}
	return nil
}

// New validates cfg and returns a Client. It does not contact Django. A nil log discards
// everything. Errors name the offending Config field.
func New(cfg Config, log *slog.Logger) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	base, _ := normaliseBaseURL(cfg.BaseURL) // checked by Validate
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	retries := cfg.MaxRetries
	switch {
	case retries == 0:
		retries = DefaultMaxRetries
	case retries < 0:
		retries = 0
	}
	hc := newHTTPClient(timeout)

	c := &Client{
		authURL:   base + "auth/",
		eventsURL: base + "events/",
		secret:    append([]byte(nil), cfg.Secret...),
		homeRoot:  filepath.Clean(cfg.HomeRoot),
		timeout:   timeout,
		log:       log,
		now:       time.Now,
	}
	c.rc = &retryablehttp.Client{
		HTTPClient:   hc,
		Logger:       debugLogger{log},
		RetryWaitMin: retryWaitMin,
		RetryWaitMax: retryWaitMax,
		RetryMax:     retries,
		CheckRetry:   checkRetry,
		Backoff:      backoff,
		ErrorHandler: keepLastResponse,
		PrepareRetry: c.resignAs(PurposeAuth),
	}
	return c, nil
}

func normaliseBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("base url: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return "", fmt.Errorf("base url %q: scheme must be http or https", u.Redacted())
	case u.Host == "":
		return "", fmt.Errorf("base url %q: no host", u.Redacted())
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return "", fmt.Errorf("base url %q: must not have a query or fragment", u.Redacted())
	}
	s := u.String()
	if s[len(s)-1] != '/' {
		s += "/"
	}
	return s, nil
}

// newHTTPClient builds the shared keep-alive client. Redirects are not followed: a redirected
// POST loses its body, and a 3xx is a misconfigured URL that should surface as ErrRejected.
func newHTTPClient(timeout time.Duration) *http.Client {
	dialTimeout := min(timeout, 2*time.Second)
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   dialTimeout,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          128,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   dialTimeout,
		ExpectContinueTimeout: time.Second,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// checkRetry retries 5xx answers and transient transport failures (refused or reset
// connections, timeouts of a single step, temporary DNS failures). It never retries a 4xx,
// nor anything once the call's own context is done.
func checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, err
	}
	if err != nil {
		return retryableTransportError(err), err
	}
	return resp.StatusCode >= 500, nil
}

func retryableTransportError(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	if dnsErr, ok := errors.AsType[*net.DNSError](err); ok {
		return dnsErr.IsTimeout || dnsErr.IsTemporary
	}
	if netErr, ok := errors.AsType[net.Error](err); ok {
		return netErr.Timeout()
	}
	return false
}

// backoff is exponential with equal jitter: attempt n waits in [d/2, d] with
// d = min(lo·2ⁿ, hi). It ignores Retry-After: the whole call has a few seconds at most.
func backoff(lo, hi time.Duration, attempt int, _ *http.Response) time.Duration {
	d := hi
	if attempt < 30 {
		d = min(lo<<attempt, hi)
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}

// attemptsError reports that retryablehttp gave up; the last response, if any, is returned
// beside it so the caller can tell a 5xx from a transport failure.
type attemptsError struct {
	attempts int
	err      error
}

func (e *attemptsError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("giving up after %d attempts", e.attempts)
	}
	return fmt.Sprintf("giving up after %d attempts: %v", e.attempts, e.err)
}

func (e *attemptsError) Unwrap() error { return e.err }

func keepLastResponse(resp *http.Response, err error, attempts int) (*http.Response, error) {
	if resp != nil && err == nil {
		// A 5xx after the last retry: hand it over, the caller maps the status.
		return resp, nil
	}
	if resp != nil {
		drainAndClose(resp.Body)
	}
	return nil, &attemptsError{attempts: attempts, err: err}
}

// resignAs returns retryablehttp's PrepareRetry for requests of purpose: every retry carries
// a fresh timestamp and signature.
func (c *Client) resignAs(purpose Purpose) func(*http.Request) error {
	return func(req *http.Request) error { return c.resign(req, purpose) }
}

func (c *Client) resign(req *http.Request, purpose Purpose) error {
	if req.GetBody == nil {
		return errors.New("re-sign retry: request body cannot be replayed")
	}
	rc, err := req.GetBody()
	if err != nil {
		return fmt.Errorf("re-sign retry: %w", err)
	}
	defer rc.Close()
	body, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("re-sign retry: %w", err)
	}
	// retryablehttp copies the request shallowly; never write to a header map an earlier
	// attempt may still be reading.
	req.Header = req.Header.Clone()
	c.sign(req.Header, purpose, body)
	return nil
}

// postSigned posts body to url, signed for purpose, through rc (whose PrepareRetry signs
// every retry afresh), and returns the last answer with up to MaxBodyBytes+1 bytes of its
// body, its connection released. Auth and events share it. A request that cannot be built
// wraps ErrRejected; a transport failure returns no response; a failure to read the body
// returns the response as well.
func (c *Client) postSigned(ctx context.Context, rc *retryablehttp.Client, url string, purpose Purpose, body []byte) (*http.Response, []byte, error) {
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, url, body)
	if err != nil {
		return nil, nil, fmt.Errorf("build %s request: %w: %w", purpose, ErrRejected, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "djftpd")
	c.sign(req.Header, purpose, body)
	resp, err := rc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer drainAndClose(resp.Body)
	answer, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return resp, nil, fmt.Errorf("read answer: %w", err)
	}
	return resp, answer, nil
}

func (c *Client) sign(h http.Header, purpose Purpose, body []byte) {
	ts, sig := Sign(c.secret, purpose, c.now(), body)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, sig)
}

// drainAndClose reads what is left of a body, bounded, so the connection can be reused.
func drainAndClose(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, MaxBodyBytes))
	_ = body.Close()
}

// debugLogger adapts slog to retryablehttp.LeveledLogger. The library's messages are
// attempt-level detail (including "request failed" for an attempt that is then retried), so
// all of them go to DEBUG; the outcome of a call is the caller's to log. The library logs
// method and redacted URL only: no header, so no signature.
type debugLogger struct{ l *slog.Logger }

var _ retryablehttp.LeveledLogger = debugLogger{}

func (d debugLogger) Error(msg string, kv ...any) { d.l.Debug(msg, kv...) }
func (d debugLogger) Warn(msg string, kv ...any)  { d.l.Debug(msg, kv...) }
func (d debugLogger) Info(msg string, kv ...any)  { d.l.Debug(msg, kv...) }
func (d debugLogger) Debug(msg string, kv ...any) { d.l.Debug(msg, kv...) }
