package cache

import (
	"strings"
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
