package djangoclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

// Authenticate asks Django whether r's credentials are valid (POST {BaseURL}auth/, signed).
// The call, retries and backoff included, ends within the configured Timeout or when ctx is
// done, whichever comes first.
//
// On success it returns a Grant whose answer was signed by Django within MaxSkew and bound to
// the request attempt it answers (SignAnswer), and whose home lies inside the configured home
// root. Every error wraps exactly one of:
//   - ErrInvalidCredentials: a signed 401;
//   - ErrRejected: a 403 (Django's error code is in the message), an answer whose signature
//     or timestamp does not verify, or any other unexpected status (3xx, 400, 404, 405, 413...);
//   - ErrUnavailable: 5xx, timeouts, refused or reset connections after the retries, or ctx
//     done (then the error also wraps ctx.Err());
//   - ErrBadGrant: a signed 200 whose content fails validation.
//
// Only 5xx answers and transient transport failures are retried, each retry signed afresh.
// The password is sent to Django and nowhere else: it is never logged.
func (c *Client) Authenticate(ctx context.Context, r AuthRequest) (Grant, error) {
	start := time.Now()
	g, status, err := c.authenticate(ctx, r)
	c.log.LogAttrs(ctx, slog.LevelDebug, "django auth answer",
		slog.String("user", r.Username),
		slog.String("session", r.Session),
		slog.Int("status", status),
		slog.Int64("duration_ms", time.Since(start).Milliseconds()),
		slog.Any("err", err))
	return g, err
}

func (c *Client) authenticate(ctx context.Context, r AuthRequest) (Grant, int, error) {
	body, err := json.Marshal(r)
	if err != nil {
		// Unreachable for a struct of strings; kept so the contract holds.
		return Grant{}, 0, fmt.Errorf("encode auth request: %w: %w", ErrRejected, err)
	}
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	resp, answer, err := c.postSigned(callCtx, c.rc, c.authURL, PurposeAuth, body)
	switch {
	case errors.Is(err, ErrRejected):
		return Grant{}, 0, err
	case err != nil && resp == nil:
		return Grant{}, 0, unavailable(ctx, err)
	case err != nil:
		return Grant{}, resp.StatusCode, unavailable(ctx, err)
	}
	tooLarge := len(answer) > MaxBodyBytes

	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		if tooLarge {
			return Grant{}, code, fmt.Errorf("auth answer: body over %d KiB: %w", MaxBodyBytes>>10, ErrBadGrant)
		}
		if err := c.verifyAnswer(resp, PurposeAuth, answer); err != nil {
			return Grant{}, code, err
		}
		g, err := parseGrant(answer, c.homeRoot)
		return g, code, err
	case code == http.StatusUnauthorized:
		if err := c.verifyAnswer(resp, PurposeAuth, answer); err != nil {
			return Grant{}, code, err
		}
		return Grant{}, code, fmt.Errorf("auth answer 401: %w", ErrInvalidCredentials)
	case code == http.StatusForbidden:
		return Grant{}, code, fmt.Errorf("auth answer 403 (%s): %w", errorCode(answer), ErrRejected)
	case code >= 500:
		return Grant{}, code, fmt.Errorf("auth answer %d after retries: %w", code, ErrUnavailable)
	default:
		return Grant{}, code, fmt.Errorf("auth answer %d (%s), check the django url: %w",
			code, errorCode(answer), ErrRejected)
	}
}

// unavailable wraps a transport failure; when the caller's own ctx ended the call, its error
// is wrapped too so callers can tell cancellation from an outage.
func unavailable(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("auth request: %w: %w: %w", ErrUnavailable, ctxErr, err)
	}
	return fmt.Errorf("auth request: %w: %w", ErrUnavailable, err)
}

// verifyAnswer checks an answer's signature against the signature of the attempt that
// produced it: every retry is signed afresh, so that is resp.Request's header, not the first
// attempt's. purpose is the request's. A failure wraps ErrRejected.
func (c *Client) verifyAnswer(resp *http.Response, purpose Purpose, body []byte) error {
	var requestSig string
	if resp.Request != nil {
		requestSig = resp.Request.Header.Get(HeaderSignature)
	}
	err := VerifyAnswer(c.secret, purpose, resp.Header.Get(HeaderTimestamp), resp.Header.Get(HeaderSignature),
		requestSig, body, c.now(), MaxSkew)
	if err != nil {
		return fmt.Errorf("answer signature: %w: %w", err, ErrRejected)
	}
	return nil
}

// errorCode extracts Django's "error" field for a message: printable ASCII, at most 64 bytes,
// "no error code" otherwise. The answer is unauthenticated, so nothing else of it is shown.
func errorCode(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		return "no error code"
	}
	s := e.Error
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}

// grantJSON is the 200 answer. Pointers tell a missing field from a zero value.
type grantJSON struct {
	OK          *bool   `json:"ok"`
	Username    *string `json:"username"`
	Home        *string `json:"home"`
	Perms       *string `json:"perms"`
	Welcome     *string `json:"welcome"`
	TTL         *int64  `json:"ttl"`
	QuotaBytes  *int64  `json:"quota_bytes"`
	MaxSessions *int    `json:"max_sessions"`
}

// parseGrant decodes and validates a 200 answer body. Every error wraps ErrBadGrant. An
// accepted Grant has a non-empty username, perms made of PermLetters only, a clean absolute
// home equal to or below homeRoot (itself clean and absolute), TTL ≥ 0 (NoCache when Django
// sent 0) and no negative quota or session limit.
func parseGrant(body []byte, homeRoot string) (Grant, error) {
	var a grantJSON
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&a); err != nil {
		return Grant{}, fmt.Errorf("decode grant: %w: %w", ErrBadGrant, err)
	}
	if dec.More() {
		return Grant{}, fmt.Errorf("decode grant: trailing data: %w", ErrBadGrant)
	}
	switch {
	case a.OK == nil || !*a.OK:
		return Grant{}, fmt.Errorf("grant: \"ok\" is not true: %w", ErrBadGrant)
	case a.Username == nil || *a.Username == "":
		return Grant{}, fmt.Errorf("grant: empty username: %w", ErrBadGrant)
	case a.Home == nil:
		return Grant{}, fmt.Errorf("grant: no home: %w", ErrBadGrant)
	case a.Perms == nil:
		return Grant{}, fmt.Errorf("grant: no perms: %w", ErrBadGrant)
	}
	for i := 0; i < len(*a.Perms); i++ {
		if strings.IndexByte(PermLetters, (*a.Perms)[i]) < 0 {
			return Grant{}, fmt.Errorf("grant: unknown perm letter %q: %w", (*a.Perms)[i], ErrBadGrant)
		}
	}
	home, err := checkHome(*a.Home, homeRoot)
	if err != nil {
		return Grant{}, err
	}
	g := Grant{
		Username:    *a.Username,
		Home:        home,
		Perms:       *a.Perms,
		QuotaBytes:  a.QuotaBytes,
		MaxSessions: a.MaxSessions,
	}
	if a.Welcome != nil {
		g.Welcome = *a.Welcome
	}
	if a.TTL != nil {
		if *a.TTL < 0 || *a.TTL > math.MaxInt64/int64(time.Second) {
			return Grant{}, fmt.Errorf("grant: ttl %d out of range: %w", *a.TTL, ErrBadGrant)
		}
		g.TTL = time.Duration(*a.TTL) * time.Second
		g.NoCache = *a.TTL == 0 // "do not cache", not "use the default" (that is an absent ttl)
	}
	if g.QuotaBytes != nil && *g.QuotaBytes < 0 {
		return Grant{}, fmt.Errorf("grant: negative quota_bytes: %w", ErrBadGrant)
	}
	if g.MaxSessions != nil && *g.MaxSessions < 0 {
		return Grant{}, fmt.Errorf("grant: negative max_sessions: %w", ErrBadGrant)
	}
	return g, nil
}

// checkHome returns home cleaned when it is absolute and equal to or below root. The
// comparison is on whole path elements, so "/srv/ftp-evil" is not inside "/srv/ftp".
func checkHome(home, root string) (string, error) {
	if !filepath.IsAbs(home) {
		return "", fmt.Errorf("grant: home %q is not absolute: %w", home, ErrBadGrant)
	}
	if strings.IndexByte(home, 0) >= 0 {
		return "", fmt.Errorf("grant: home contains a nul byte: %w", ErrBadGrant)
	}
	home = filepath.Clean(home)
	if !inside(home, root) {
		return "", fmt.Errorf("grant: home %q is outside the home root %q: %w", home, root, ErrBadGrant)
	}
	return home, nil
}

func inside(path, root string) bool {
	if path == root {
		return true
	}
	prefix := root
	if !strings.HasSuffix(prefix, string(filepath.Separator)) {
		prefix += string(filepath.Separator)
	}
	return strings.HasPrefix(path, prefix)
}
