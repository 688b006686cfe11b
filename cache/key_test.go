package cache

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
)

func TestKeyDerivation(t *testing.T) {
	k1, k2 := newKeyer(), newKeyer()
	a := k1.key("alice", "", "pw")
	if a != k1.key("alice", "", "pw") {
		t.Fatal("same process key, same pair: keys differ")
	}
	for _, other := range []string{k2.key("alice", "", "pw"), k1.key("alice", "", "pw2"), k1.key("bob", "", "pw"),
		k1.key("alic", "", "epw"), k1.key("alice", "192.0.2.1", "pw"), k1.key("alice", "p", "w")} {
		if other == a {
			t.Fatalf("key collision: %q", a)
		}
	}
	if !strings.HasPrefix(a, "alice\x00") || len(a) != len("alice\x00")+64 || strings.Contains(a, "pw") {
		t.Fatalf("key %q", a)
	}
	// Equal passwords of two users do not give equal verifiers.
	if strings.TrimPrefix(k1.key("bob", "", "pw"), "bob\x00") == strings.TrimPrefix(a, "alice\x00") {
		t.Fatal("equal verifiers for equal passwords of two users")
	}
}

// TestKeyConcurrent: keys derived at once by many goroutines (sharing the pooled MACs) are
// the keys derived one at a time.
func TestKeyConcurrent(t *testing.T) {
	k := newKeyer()
	want := make([]string, 64)
	for i := range want {
		want[i] = k.key(fmt.Sprint("user", i), "192.0.2.1", fmt.Sprint("password-", i))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for r := range 50 {
				i := (g*7 + r) % len(want)
				if got := k.key(fmt.Sprint("user", i), "192.0.2.1", fmt.Sprint("password-", i)); got != want[i] {
					t.Errorf("key %d: %q concurrently, %q alone", i, got, want[i])
				}
			}
		})
	}
	wg.Wait()
}

// TestCacheHitAllocations: a cached login's lookup allocates its key and the grant's copy
// only (it keyed a new HMAC and built disabled DEBUG attributes: 15 allocations).
func TestCacheHitAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's sync.Pool drops items at random")
	}
	up := &fakeUpstream{answer: passwords(map[string]string{"alice": "pw"}, 0)}
	c := New(Config{}, up, nil)
	r := req("alice", "pw")
	if _, err := c.Authenticate(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if _, res, err := c.AuthenticateWithResult(context.Background(), r); err != nil || res != ResultHit {
			t.Fatalf("%v %v", res, err)
		}
	})
	if allocs > 2 {
		t.Errorf("cache hit: %v allocations, want at most 2", allocs)
	}
}
