package cache

import (
	"context"
	"testing"
)

// BenchmarkCacheHit is the login path of a cached user: key derivation (HMAC of the
// password) and a lookup, no upstream call.
func BenchmarkCacheHit(b *testing.B) {
	up := &fakeUpstream{answer: passwords(map[string]string{"alice": "pw"}, 0)}
	c := New(Config{}, up, nil)
	r := req("alice", "pw")
	if _, err := c.Authenticate(context.Background(), r); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, res, err := c.AuthenticateWithResult(context.Background(), r); err != nil || res != ResultHit {
			b.Fatalf("%v %v", res, err)
		}
	}
	if up.calls.Load() != 1 {
		b.Fatalf("upstream called %d times", up.calls.Load())
	}
}
