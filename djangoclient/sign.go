package djangoclient

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header names of the signing scheme (DESIGN.md section 10, signature v2). Both directions
// use them.
const (
	// HeaderTimestamp carries the signing time as decimal unix seconds.
	HeaderTimestamp = "X-Djftpd-Timestamp"
	// HeaderSignature carries "v2=" and the lowercase hex HMAC-SHA256 under the shared
	// secret of "djftpd-v2|<purpose>|<timestamp>|<raw body>" on a request, and of
	// "djftpd-v2|<purpose>-answer|<timestamp>|<request signature hex>|<raw body>" on an
	// answer.
	HeaderSignature = "X-Djftpd-Signature"
)

// Purpose names what a signed message is for; it is part of what is signed, so a message
// signed for one endpoint (or direction) never verifies as another.
type Purpose string

// The purposes of DESIGN.md section 10. Sessions and SessionsClose are reserved for the live
// sessions endpoints.
const (
	PurposeAuth          Purpose = "auth"
	PurposeEvents        Purpose = "events"
	PurposeCachePurge    Purpose = "cache-purge"
	PurposePing          Purpose = "ping"
	PurposeSessions      Purpose = "sessions"
	PurposeSessionsClose Purpose = "sessions-close"
)

// Purposes lists every purpose, for tests that replay one kind as another.
func Purposes() []Purpose {
	return []Purpose{PurposeAuth, PurposeEvents, PurposeCachePurge, PurposePing, PurposeSessions, PurposeSessionsClose}
}

func (p Purpose) valid() bool {
	for _, q := range Purposes() {
		if p == q {
			return true
		}
	}
	return false
}

// MaxSkew is how far a signed message's timestamp may be from the receiver's clock.
const MaxSkew = 300 * time.Second

// Errors returned by Verify. A receiver maps them to Django's error codes: ErrBadSignature is
// "bad_signature", ErrStaleTimestamp is "stale_timestamp".
var (
	// ErrBadSignature means the signature or timestamp header is missing or malformed, or
	// the signature does not match the body and purpose under the secret.
	ErrBadSignature = errors.New("bad signature")
	// ErrStaleTimestamp means the signature is valid but the timestamp is further than the
	// allowed skew from the receiver's clock.
	ErrStaleTimestamp = errors.New("stale timestamp")
)

const (
	signaturePrefix = "v2="
	macDomain       = "djftpd-v2"
	answerSuffix    = "-answer"
)

// Sign returns the values of the X-Djftpd-Timestamp and X-Djftpd-Signature headers for a
// request body signed at ts under secret for purpose: the unix seconds of ts in decimal, and
// "v2=" followed by the lowercase hex HMAC-SHA256 of "djftpd-v2|<purpose>|<timestamp>|<body>".
// It is deterministic and never fails.
func Sign(secret []byte, purpose Purpose, ts time.Time, body []byte) (timestamp, signature string) {
	return sign(secret, string(purpose), ts, body)
}

// Verify checks request header values produced by Sign for purpose against body. It returns
// nil when signature is exactly the "v2=<lowercase hex>" signature of purpose, timestamp and
// body under secret (compared in constant time) and timestamp lies within maxSkew of now in
// either direction. Otherwise it returns an error wrapping ErrBadSignature (missing, malformed,
// wrong, or signed for another purpose) or, for an authentic message with an out-of-range
// timestamp, ErrStaleTimestamp. The signature is checked first, so an unauthenticated sender
// learns nothing about the receiver's clock.
func Verify(secret []byte, purpose Purpose, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	if !purpose.valid() {
		return fmt.Errorf("unknown purpose %q: %w", purpose, ErrBadSignature)
	}
	return verify(secret, string(purpose), timestamp, signature, now, maxSkew, body)
}

// SignAnswer returns the header values for an answer body to a verified request of purpose
// whose X-Djftpd-Signature value was requestSignature ("v2=" prefix included): the same format
// as Sign, over "djftpd-v2|<purpose>-answer|<timestamp>|<request signature hex>|<body>".
// Binding the answer to the request's signature means a recorded answer is worthless for any
// other request; the "-answer" purpose means it never passes for a request. Sign only answers
// to requests that verified: requestSignature must be a valid v2 signature.
func SignAnswer(secret []byte, purpose Purpose, ts time.Time, requestSignature string, body []byte) (timestamp, signature string) {
	return sign(secret, string(purpose)+answerSuffix, ts, []byte(strings.TrimPrefix(requestSignature, signaturePrefix)), body)
}

// VerifyAnswer checks answer header values produced by SignAnswer for the request of purpose
// that was sent with requestSignature. It behaves as Verify (same errors, same order of
// checks); a requestSignature that is not "v2=" and 64 lowercase hex digits never verifies.
func VerifyAnswer(secret []byte, purpose Purpose, timestamp, signature, requestSignature string, body []byte, now time.Time, maxSkew time.Duration) error {
	if !purpose.valid() {
		return fmt.Errorf("unknown purpose %q: %w", purpose, ErrBadSignature)
	}
	reqHex, ok := strings.CutPrefix(requestSignature, signaturePrefix)
	if !ok || !isLowerHex(reqHex, 2*sha256.Size) {
		return fmt.Errorf("missing or malformed request signature: %w", ErrBadSignature)
	}
	return verify(secret, string(purpose)+answerSuffix, timestamp, signature, now, maxSkew, []byte(reqHex), body)
}

// sign and verify are the one implementation behind both directions: the MAC covers the
// domain, the purpose, the timestamp and each part, joined by '|'. No field but the last
// (the body) may contain '|': purposes are fixed words, the timestamp is digits and a request
// signature is hex, so the joined text parses one way only.
func sign(secret []byte, purpose string, ts time.Time, parts ...[]byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	return timestamp, signaturePrefix + hex.EncodeToString(mac(secret, purpose, timestamp, parts))
}

func verify(secret []byte, purpose, timestamp, signature string, now time.Time, maxSkew time.Duration, parts ...[]byte) error {
	if timestamp == "" {
		return fmt.Errorf("missing timestamp: %w", ErrBadSignature)
	}
	if signature == "" {
		return fmt.Errorf("missing signature: %w", ErrBadSignature)
	}
	secs, ok := parseTimestamp(timestamp)
	if !ok {
		return fmt.Errorf("malformed timestamp: %w", ErrBadSignature)
	}
	want := make([]byte, 0, len(signaturePrefix)+2*sha256.Size)
	want = append(want, signaturePrefix...)
	want = hex.AppendEncode(want, mac(secret, purpose, timestamp, parts))
	if !hmac.Equal(want, []byte(signature)) {
		return fmt.Errorf("signature mismatch: %w", ErrBadSignature)
	}
	limit := int64(maxSkew / time.Second)
	if d := now.Unix() - secs; d > limit || d < -limit {
		return fmt.Errorf("timestamp %d s from local clock: %w", d, ErrStaleTimestamp)
	}
	return nil
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		if (s[i] < '0' || s[i] > '9') && (s[i] < 'a' || s[i] > 'f') {
			return false
		}
	}
	return true
}

// parseTimestamp accepts only plain decimal digits (no sign, no spaces), so that the signed
// text and the value compared with the clock are the same thing.
func parseTimestamp(s string) (int64, bool) {
	if len(s) == 0 || len(s) > 18 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func mac(secret []byte, purpose, timestamp string, parts [][]byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(macDomain + "|" + purpose + "|" + timestamp))
	for _, p := range parts {
		m.Write([]byte{'|'})
		m.Write(p)
	}
	return m.Sum(nil)
}
