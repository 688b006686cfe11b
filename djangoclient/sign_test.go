package djangoclient

import (
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"testing"
	"time"
)

// TestSigningVector pins DESIGN.md section 10 (signature v2): the Go signer reproduces the vector the Python
// verifier (djftpd.signing) tests too, byte for byte.
func TestSigningVector(t *testing.T) {
	raw, err := os.ReadFile("../testdata/signing_vector.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Secret, Purpose, Timestamp, Body, Signature string
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	secs, err := strconv.ParseInt(v.Timestamp, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	ts, sig := Sign([]byte(v.Secret), Purpose(v.Purpose), time.Unix(secs, 0), []byte(v.Body))
	if ts != v.Timestamp || sig != v.Signature {
		t.Fatalf("Sign = %q, %q; want %q, %q", ts, sig, v.Timestamp, v.Signature)
	}
	if err := Verify([]byte(v.Secret), Purpose(v.Purpose), v.Timestamp, v.Signature, []byte(v.Body), time.Unix(secs, 0), MaxSkew); err != nil {
		t.Fatalf("Verify(vector) = %v", err)
	}
}

func TestVerify(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"username":"alice"}`)
	now := time.Unix(1_700_000_000, 0)
	ts, sig := Sign(secret, PurposeAuth, now, body)
	upper := "v2=" + string(toUpperHex(sig[3:]))

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
		{"version 1", secret, ts, "v1=" + sig[3:], body, now, ErrBadSignature},
		{"unknown version", secret, ts, "v3=" + sig[3:], body, now, ErrBadSignature},
		{"signed timestamp with plus", secret, "+" + ts, sig, body, now, ErrBadSignature},
		{"timestamp with space", secret, " " + ts, sig, body, now, ErrBadSignature},
		{"huge timestamp", secret, "99999999999999999999999", sig, body, now, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, PurposeAuth, tt.ts, tt.sig, tt.body, tt.now, MaxSkew)
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
	err := Verify(secret, PurposeAuth, "1", "v2=00", nil, time.Now(), MaxSkew)
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

// TestAnswerSigningVector pins the answer scheme of DESIGN.md section 10: an answer is signed
// over "djftpd-v2|<purpose>-answer|<timestamp>|<request signature hex>|<body>"; Django's
// signer must reproduce this vector.
func TestAnswerSigningVector(t *testing.T) {
	raw, err := os.ReadFile("../testdata/answer_signing_vector.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Secret           string `json:"secret"`
		Purpose          string `json:"purpose"`
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
	p := Purpose(v.Purpose)
	ts, sig := SignAnswer([]byte(v.Secret), p, now, v.RequestSignature, []byte(v.Body))
	if ts != v.Timestamp || sig != v.Signature {
		t.Fatalf("SignAnswer = %q, %q; want %q, %q", ts, sig, v.Timestamp, v.Signature)
	}
	if err := VerifyAnswer([]byte(v.Secret), p, v.Timestamp, v.Signature, v.RequestSignature, []byte(v.Body), now, MaxSkew); err != nil {
		t.Fatalf("VerifyAnswer(vector) = %v", err)
	}
	// The request scheme over the same body is a different signature.
	if _, reqSig := Sign([]byte(v.Secret), p, now, []byte(v.Body)); reqSig == v.Signature {
		t.Fatal("answer signature equals the request-scheme signature")
	}
}

func TestVerifyAnswer(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"ok":true}`)
	now := time.Unix(1_700_000_000, 0)
	_, reqSig := Sign(secret, PurposeAuth, now, []byte(`{"username":"alice"}`))
	_, otherReq := Sign(secret, PurposeAuth, now, []byte(`{"username":"bob"}`))
	ts, sig := SignAnswer(secret, PurposeAuth, now, reqSig, body)
	_, plain := Sign(secret, PurposeAuth, now, body)

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
		{"request with uppercase hex", ts, sig, "v2=" + string(toUpperHex(reqSig[3:])), body, now, ErrBadSignature},
		{"no request signature", ts, sig, "", body, now, ErrBadSignature},
		{"request-scheme signature", ts, plain, reqSig, body, now, ErrBadSignature},
		{"tampered body", ts, sig, reqSig, []byte(`{"ok":false}`), now, ErrBadSignature},
		{"stale", ts, sig, reqSig, body, now.Add(301 * time.Second), ErrStaleTimestamp},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifyAnswer(secret, PurposeAuth, tt.ts, tt.sig, tt.reqSg, tt.body, tt.now, MaxSkew)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("VerifyAnswer = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestSignedKindsDoNotReplay: every signed message kind (a request or an answer of each
// purpose), replayed as any other kind with the same timestamp, body and request signature,
// is refused; each verifies as itself only.
func TestSignedKindsDoNotReplay(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"username":"alice"}`)
	_, reqSig := Sign(secret, PurposePing, now, []byte(`{}`))

	type kind struct {
		purpose Purpose
		answer  bool
	}
	var kinds []kind
	for _, p := range Purposes() {
		kinds = append(kinds, kind{p, false}, kind{p, true})
	}
	name := func(k kind) string {
		if k.answer {
			return string(k.purpose) + "-answer"
		}
		return string(k.purpose)
	}
	for _, signed := range kinds {
		var ts, sig string
		if signed.answer {
			ts, sig = SignAnswer(secret, signed.purpose, now, reqSig, body)
		} else {
			ts, sig = Sign(secret, signed.purpose, now, body)
		}
		for _, as := range kinds {
			t.Run(name(signed)+" as "+name(as), func(t *testing.T) {
				var err error
				if as.answer {
					err = VerifyAnswer(secret, as.purpose, ts, sig, reqSig, body, now, MaxSkew)
				} else {
					err = Verify(secret, as.purpose, ts, sig, body, now, MaxSkew)
				}
				if signed == as && err != nil {
					t.Fatalf("verify as itself = %v", err)
				}
				if signed != as && !errors.Is(err, ErrBadSignature) {
					t.Fatalf("verify as another kind = %v, want ErrBadSignature", err)
				}
			})
		}
	}
}

func TestVerifyUnknownPurpose(t *testing.T) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_700_000_000, 0)
	for _, p := range []Purpose{"", "auth-answer", "AUTH", "auth|x"} {
		ts, sig := Sign(secret, p, now, nil)
		if err := Verify(secret, p, ts, sig, nil, now, MaxSkew); !errors.Is(err, ErrBadSignature) {
			t.Errorf("Verify(purpose %q) = %v, want ErrBadSignature", p, err)
		}
	}
}

// FuzzVerify: header values from the network never panic the verifier, and verify only when
// they are exactly what the signer makes.
func FuzzVerify(f *testing.F) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	now := time.Unix(1_700_000_000, 0)
	ts, sig := Sign(secret, PurposePing, now, []byte("{}"))
	f.Add(ts, sig, sig, []byte("{}"))
	f.Add("1700000000", "v2=", "v2=00", []byte(nil))
	f.Fuzz(func(t *testing.T, ts, sig, reqSig string, body []byte) {
		if err := Verify(secret, PurposePing, ts, sig, body, now, MaxSkew); err == nil {
			if wantTS, want := Sign(secret, PurposePing, now, body); ts != wantTS || sig != want {
				t.Fatalf("Verify accepted %q %q", ts, sig)
			}
		}
		if err := VerifyAnswer(secret, PurposePing, ts, sig, reqSig, body, now, MaxSkew); err == nil {
			if wantTS, want := SignAnswer(secret, PurposePing, now, reqSig, body); ts != wantTS || sig != want {
				t.Fatalf("VerifyAnswer accepted %q %q for %q", ts, sig, reqSig)
			}
		}
	})
}
