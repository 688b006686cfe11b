package cache

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
)

// keyer derives cache keys. Its MAC key is random per process and never leaves memory, so a
// key reveals nothing about the password to anyone without the process's memory, and keys
// cannot be precomputed.
type keyer struct {
	secret [32]byte
}

func newKeyer() keyer {
	var k keyer
	rand.Read(k.secret[:]) // never fails (crypto/rand, Go ≥ 1.24)
	return k
}

// key returns username, a NUL and the hex HMAC-SHA256 of (username, ip, kind, secret) under
// the process key, where kind says what secret is: a password, or the authorized_keys line of
// an SSH public key (a key login, keyed by the key: a keyed fingerprint). The MAC is
// fixed-length at the end, so two different tuples never share a key; username, ip and kind
// are length-prefixed, so a password spelled like a key line never meets a key login's entry,
// and equal passwords of two users do not show as equal verifiers. ip is "" when keys are not
// per client address.
func (k keyer) key(username, ip, password string) string {
	return k.credentialKey(username, ip, "password", password)
}

// publicKeyKey is key for a public-key login.
func (k keyer) publicKeyKey(username, ip, authorizedKey string) string {
	return k.credentialKey(username, ip, "public_key", authorizedKey)
}

func (k keyer) credentialKey(username, ip, kind, secret string) string {
	m := hmac.New(sha256.New, k.secret[:])
	var n [4]byte
	for _, s := range []string{username, ip, kind} {
		binary.BigEndian.PutUint32(n[:], uint32(len(s)))
		m.Write(n[:])
		m.Write([]byte(s))
	}
	m.Write([]byte(secret))
	var sum [sha256.Size]byte
	return username + "\x00" + hex.EncodeToString(m.Sum(sum[:0]))
}

// normalizeIP returns the client address in one spelling: IPv4-mapped IPv6 unmapped and the
// zone dropped, so "::ffff:192.0.2.1" and "192.0.2.1" are one client. Anything that does not
// parse is kept as given (it still separates keys).
func normalizeIP(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	return a.Unmap().WithZone("").String()
}
