package djangoclient

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Header names of the signing scheme (DESIGN.md section 2). Both directions use them.
const (
	// HeaderTimestamp carries the signing time as decimal unix seconds.
	HeaderTimestamp = "X-Djftpd-Timestamp"
	// HeaderSignature carries "v1=" and the lowercase hex HMAC-SHA256 under the shared
	// secret of "<timestamp>.<raw body>" on a request, and of
	// "<timestamp>.<the request's X-Djftpd-Signature>.<raw body>" on an answer.
	HeaderSignature = "X-Djftpd-Signature"
)

// MaxSkew is how far a signed message's timestamp may be from the receiver's clock.
const MaxSkew = 300 * time.Second

// Errors returned by Verify. A receiver maps them to Django's error codes: ErrBadSignature is
// "bad_signature", ErrStaleTimestamp is "stale_timestamp".
var (
	// ErrBadSignature means the signature or timestamp header is missing or malformed, or
	// the signature does not match the body under the secret.
	ErrBadSignature = errors.New("bad signature")
	// ErrStaleTimestamp means the signature is valid but the timestamp is further than the
	// allowed skew from the receiver's clock.
	ErrStaleTimestamp = errors.New("stale timestamp")
)

const signaturePrefix = "v1="

// Sign returns the values of the X-Djftpd-Timestamp and X-Djftpd-Signature headers for a
// request body signed at ts under secret: the unix seconds of ts in decimal, and "v1="
// followed by the lowercase hex HMAC-SHA256 of "<timestamp>.<body>". It is deterministic and
// never fails.
func Sign(secret []byte, ts time.Time, body []byte) (timestamp, signature string) {
	return sign(secret, ts, body)
}

// Verify checks request header values produced by Sign against body. It returns nil when
// signature is exactly the "v1=<lowercase hex>" signature of timestamp and body under secret
// (compared in constant time) and timestamp lies within maxSkew of now in either direction.
// Otherwise it returns an error wrapping ErrBadSignature (missing, malformed or wrong) or, for
// an authentic message with an out-of-range timestamp, ErrStaleTimestamp. The signature is
// checked first, so an unauthenticated sender learns nothing about the receiver's clock.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
	return verify(secret, timestamp, signature, now, maxSkew, body)
}

// SignAnswer returns the header values for an answer body to a signed request whose
// X-Djftpd-Signature value was requestSignature ("v1=" prefix included): the same format as
// Sign, over "<timestamp>.<requestSignature>.<body>". Binding the answer to the request's
// signature means a recorded answer is worthless for any other request. (An answer's MAC input
// is also a request's over the body "<requestSignature>.<body>"; no JSON body starts with
// "v1=", so neither can pass for the other.)
func SignAnswer(secret []byte, ts time.Time, requestSignature string, body []byte) (timestamp, signature string) {
	return sign(secret, ts, []byte(requestSignature), body)
}

// VerifyAnswer checks answer header values produced by SignAnswer for the request that was
// sent with requestSignature. It behaves as Verify (same errors, same order of checks); an
// empty requestSignature never verifies.
func VerifyAnswer(secret []byte, timestamp, signature, requestSignature string, body []byte, now time.Time, maxSkew time.Duration) error {
	if requestSignature == "" {
		return fmt.Errorf("missing request signature: %w", ErrBadSignature)
	}
	return verify(secret, timestamp, signature, now, maxSkew, []byte(requestSignature), body)
}

// sign and verify are the one implementation behind both directions: the MAC covers the
// timestamp and each part, joined by '.'.
func sign(secret []byte, ts time.Time, parts ...[]byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	return timestamp, signaturePrefix + hex.EncodeToString(mac(secret, timestamp, parts))
}

func verify(secret []byte, timestamp, signature string, now time.Time, maxSkew time.Duration, parts ...[]byte) error {
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
	want = hex.AppendEncode(want, mac(secret, timestamp, parts))
	if !hmac.Equal(want, []byte(signature)) {
		return fmt.Errorf("signature mismatch: %w", ErrBadSignature)
	}
	limit := int64(maxSkew / time.Second)
	if d := now.Unix() - secs; d > limit || d < -limit {
		return fmt.Errorf("timestamp %d s from local clock: %w", d, ErrStaleTimestamp)
	}
	return nil
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

func mac(secret []byte, timestamp string, parts [][]byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	for _, p := range parts {
		m.Write([]byte{'.'})
		m.Write(p)
	}
	return m.Sum(nil)
}
