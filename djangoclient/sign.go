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
	// HeaderSignature carries "v1=" and the lowercase hex HMAC-SHA256 of
	// "<timestamp>.<raw body>" under the shared secret.
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

// Sign returns the values of the X-Djftpd-Timestamp and X-Djftpd-Signature headers for body
// signed at ts under secret: the unix seconds of ts in decimal, and "v1=" followed by the
// lowercase hex HMAC-SHA256 of "<timestamp>.<body>". It is deterministic and never fails.
func Sign(secret []byte, ts time.Time, body []byte) (timestamp, signature string) {
	timestamp = strconv.FormatInt(ts.Unix(), 10)
	return timestamp, signaturePrefix + hex.EncodeToString(mac(secret, timestamp, body))
}

// Verify checks header values produced by Sign against body. It returns nil when signature
// is exactly the "v1=<lowercase hex>" signature of timestamp and body under secret (compared in
// constant time) and timestamp lies within maxSkew of now in either direction. Otherwise it
// returns an error wrapping ErrBadSignature (missing, malformed or wrong) or, for an authentic
// message with an out-of-range timestamp, ErrStaleTimestamp. The signature is checked first,
// so an unauthenticated sender learns nothing about the receiver's clock.
func Verify(secret []byte, timestamp, signature string, body []byte, now time.Time, maxSkew time.Duration) error {
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
	want = hex.AppendEncode(want, mac(secret, timestamp, body))
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

func mac(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}
