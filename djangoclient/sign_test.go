package djangoclient

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestSigningVector pins DESIGN.md section 2: the Go signer reproduces the vector the Python
// verifier (djftpd.signing) tests too, byte for byte.
func TestSigningVector(t *testing.T) {
	raw, err := os.ReadFile("../testdata/signing_vector.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Secret, Timestamp, Body, Signature string
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	secs, err := strconv.ParseInt(v.Timestamp, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	ts, sig := Sign([]byte(v.Secret), time.Unix(secs, 0), []byte(v.Body))
	if ts != v.Timestamp || sig != v.Signature {
		t.Fatalf("Sign = %q, %q; want %q, %q", ts, sig, v.Timestamp, v.Signature)
	}
	if err := Verify([]byte(v.Secret), v.Timestamp, v.Signature, []byte(v.Body), time.Unix(secs, 0), MaxSkew); err != nil {
		t.Fatalf("Verify(vector) = %v", err)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"username":"alice"}`)
	now := time.Unix(1_700_000_000, 0)
	ts, sig := Sign(secret, now, body)
	upper := "v1=" + string(toUpperHex(sig[3:]))

	tests := []struct {
		name    string
		secret  []byte
		ts, sig string
		body    []byte
		now     time.Time
		wantErr error
	}{
		{"valid", secret, ts, sig, body, now, nil},
		{"valid at +300 s", secret, ts, sig, body, now.Add(300 * time.Second), nil},
		{"valid at -300 s", secret, ts, sig, body, now.Add(-300 * time.Second), nil},
		{"stale at +301 s", secret, ts, sig, body, now.Add(301 * time.Second), ErrStaleTimestamp},
		{"future at -301 s", secret, ts, sig, body, now.Add(-301 * time.Second), ErrStaleTimestamp},
		{"missing timestamp", secret, "", sig, body, now, ErrBadSignature},
		{"missing signature", secret, ts, "", body, now, ErrBadSignature},
		{"wrong secret", []byte("another-secret-another-secret-xx"), ts, sig, body, now, ErrBadSignature},
		{"tampered body", secret, ts, sig, []byte(`{"username":"mallory"}`), now, ErrBadSignature},
		{"other timestamp", secret, "1700000001", sig, body, now, ErrBadSignature},
		{"uppercase hex", secret, ts, upper, body, now, ErrBadSignature},
		{"no version prefix", secret, ts, sig[3:], body, now, ErrBadSignature},
		{"unknown version", secret, ts, "v2=" + sig[3:], body, now, ErrBadSignature},
		{"signed timestamp with plus", secret, "+" + ts, sig, body, now, ErrBadSignature},
		{"timestamp with space", secret, " " + ts, sig, body, now, ErrBadSignature},
		{"huge timestamp", secret, "99999999999999999999999", sig, body, now, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.ts, tt.sig, tt.body, tt.now, MaxSkew)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Verify = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestVerifyStaleNeedsAuthenticMessage: a forged message with a bad timestamp reports a bad
// signature, not the receiver's clock.
func TestVerifyStaleNeedsAuthenticMessage(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	err := Verify(secret, "1", "v1=00", nil, time.Now(), MaxSkew)
	if !errors.Is(err, ErrBadSignature) || errors.Is(err, ErrStaleTimestamp) {
		t.Fatalf("Verify = %v, want only ErrBadSignature", err)
	}
}

func toUpperHex(s string) []byte {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return b
}

// TestAnswerSigningVector pins the answer scheme of DESIGN.md section 2: an answer is signed
// over "<timestamp>.<request signature>.<body>"; Django's signer must reproduce this vector.
func TestAnswerSigningVector(t *testing.T) {
	raw, err := os.ReadFile("../testdata/answer_signing_vector.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Secret           string `json:"secret"`
		Timestamp        string `json:"timestamp"`
		RequestSignature string `json:"request_signature"`
		Body             string `json:"body"`
		Signature        string `json:"signature"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	secs, err := strconv.ParseInt(v.Timestamp, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(secs, 0)
	ts, sig := SignAnswer([]byte(v.Secret), now, v.RequestSignature, []byte(v.Body))
	if ts != v.Timestamp || sig != v.Signature {
		t.Fatalf("SignAnswer = %q, %q; want %q, %q", ts, sig, v.Timestamp, v.Signature)
	}
	if err := VerifyAnswer([]byte(v.Secret), v.Timestamp, v.Signature, v.RequestSignature, []byte(v.Body), now, MaxSkew); err != nil {
		t.Fatalf("VerifyAnswer(vector) = %v", err)
	}
	// The request scheme over the same body is a different signature.
	if _, reqSig := Sign([]byte(v.Secret), now, []byte(v.Body)); reqSig == v.Signature {
		t.Fatal("answer signature equals the request-scheme signature")
	}
}

func TestVerifyAnswer(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"ok":true}`)
	now := time.Unix(1_700_000_000, 0)
	_, reqSig := Sign(secret, now, []byte(`{"username":"alice"}`))
	_, otherReq := Sign(secret, now, []byte(`{"username":"bob"}`))
	ts, sig := SignAnswer(secret, now, reqSig, body)
	_, plain := Sign(secret, now, body)

	tests := []struct {
		name           string
		ts, sig, reqSg string
		body           []byte
		now            time.Time
		wantErr        error
	}{
		{"valid", ts, sig, reqSig, body, now, nil},
		{"other request", ts, sig, otherReq, body, now, ErrBadSignature},
		{"request without prefix", ts, sig, reqSig[3:], body, now, ErrBadSignature},
		{"no request signature", ts, sig, "", body, now, ErrBadSignature},
		{"request-scheme signature", ts, plain, reqSig, body, now, ErrBadSignature},
		{"tampered body", ts, sig, reqSig, []byte(`{"ok":false}`), now, ErrBadSignature},
		{"stale", ts, sig, reqSig, body, now.Add(301 * time.Second), ErrStaleTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyAnswer(secret, tt.ts, tt.sig, tt.reqSg, tt.body, tt.now, MaxSkew)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("VerifyAnswer = %v, want %v", err, tt.wantErr)
			}
		})
	}
}
