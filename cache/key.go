package cache

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"hash"
	"net/netip"
	"sync"
)

// keyer derives cache keys. Its MAC key is random per process and never leaves memory, so a
// key reveals nothing about the password to anyone without the process's memory, and keys
// cannot be precomputed.
type keyer struct {
	// macs holds *keyMAC under the process key: a lookup on the login path takes one rather
	// than keying a new HMAC (two SHA-256 states and ~10 allocations per login).
	macs *sync.Pool
}

// keyMAC is one HMAC-SHA256 under the process key, with the buffers a key derivation uses.
type keyMAC struct {
	mac hash.Hash
	msg []byte // the MAC'd message; cleared after use, as it holds the password
	sum [sha256.Size]byte
}

func newKeyer() keyer {
	var secret [32]byte
	rand.Read(secret[:]) // never fails (crypto/rand, Go ≥ 1.24)
	return keyer{macs: &sync.Pool{New: func() any {
		mac := hmac.New(sha256.New, secret[:])
		mac.Reset() // saves the keyed state, which every later Reset restores whole
		return &keyMAC{mac: mac}
	}}}
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
	m := k.macs.Get().(*keyMAC)
	defer k.macs.Put(m)
	msg := m.msg[:0]
	for _, s := range [...]string{username, ip, kind} {
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(s)))
		msg = append(msg, s...)
	}
	msg = append(msg, secret...)
	m.mac.Write(msg)
	clear(msg)
	m.msg = msg[:0]
	var hexSum [2 * sha256.Size]byte
	hex.Encode(hexSum[:], m.mac.Sum(m.sum[:0]))
	// SHA-256 keeps a message's last partial block (here the whole message, password
	// included) until the next write: restoring the keyed state overwrites it.
	m.mac.Reset()
	return username + "\x00" + string(hexSum[:])
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
