package djangoclient

import (
	"testing"
	"time"
)

// BenchmarkSign signs a typical auth request body.
func BenchmarkSign(b *testing.B) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"username":"alice","password":"alice-password","client_ip":"192.0.2.10","protocol":"ftp","session":"0123456789abcdef"}`)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		Sign(secret, PurposeAuth, now, body)
	}
}

// BenchmarkVerifyAnswer checks a typical signed auth answer.
func BenchmarkVerifyAnswer(b *testing.B) {
	secret := []byte("0123456789abcdef0123456789abcdef")
	body := []byte(`{"ok":true,"username":"alice","home":"/srv/ftp/alice","perms":"elradfmwMT","welcome":"hi","quota_bytes":null,"max_sessions":null}`)
	now := time.Now()
	_, reqSig := Sign(secret, PurposeAuth, now, []byte("request"))
	ts, sig := SignAnswer(secret, PurposeAuth, now, reqSig, body)
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyAnswer(secret, PurposeAuth, ts, sig, reqSig, body, now, MaxSkew); err != nil {
			b.Fatal(err)
		}
	}
}
