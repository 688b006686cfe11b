package cache

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"unsafe"
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

// TestKeyKeepsNoPassword: once a key is derived, nothing the keyer keeps for the next
// derivation (its pooled MAC) holds the password (DESIGN.md §3: never kept in memory beyond
// the request). The MAC's message buffer was cleared, but SHA-256 keeps a message's last
// partial block in its state, and a login's whole message is shorter than a block.
func TestKeyKeepsNoPassword(t *testing.T) {
	for _, password := range []string{"Tr0ub4dor&3", strings.Repeat("correct horse battery staple ", 5)} {
		k := newKeyer()
		var kept *keyMAC
		newMAC := k.macs.New
		k.macs = &sync.Pool{New: func() any { // always the same one, even when Put drops it (-race)
			if kept == nil {
				kept = newMAC().(*keyMAC)
			}
			return kept
		}}
		for _, kind := range []func(string, string, string) string{k.key, k.publicKeyKey} {
			kind("alice", "192.0.2.1", password)
			reachable := reachableBytes(reflect.ValueOf(kept), map[uintptr]bool{})
			for i := 0; i+8 <= len(password); i++ {
				if bytes.Contains(reachable, []byte(password[i:i+8])) {
					t.Fatalf("password of %d bytes: the pooled MAC holds %q", len(password), password[i:i+8])
				}
			}
		}
	}
}

// reachableBytes is every byte reachable from v (exported fields or not, slices to their
// capacity), concatenated.
func reachableBytes(v reflect.Value, seen map[uintptr]bool) []byte {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return nil
		}
		seen[v.Pointer()] = true
		return reachableBytes(v.Elem(), seen)
	case reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return reachableBytes(v.Elem(), seen)
	case reflect.Struct:
		if !v.CanAddr() { // a struct held by value in an interface: make it addressable
			c := reflect.New(v.Type()).Elem()
			c.Set(v)
			v = c
		}
		var out []byte
		for i := range v.NumField() {
			f := v.Field(i)
			f = reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
			out = append(out, reachableBytes(f, seen)...)
		}
		return out
	case reflect.Slice:
		return reachableElems(v.Slice3(0, v.Cap(), v.Cap()), seen)
	case reflect.Array:
		return reachableElems(v, seen)
	case reflect.String:
		return []byte(v.String())
	case reflect.Map:
		var out []byte
		for it := v.MapRange(); it.Next(); {
			out = append(out, reachableBytes(it.Key(), seen)...)
			out = append(out, reachableBytes(it.Value(), seen)...)
		}
		return out
	}
	return nil // numbers, funcs, channels
}

func reachableElems(v reflect.Value, seen map[uintptr]bool) []byte {
	var out []byte
	for i := range v.Len() {
		if e := v.Index(i); e.Kind() == reflect.Uint8 {
			out = append(out, byte(e.Uint()))
		} else {
			out = append(out, reachableBytes(e, seen)...)
		}
	}
	return out
}
