package cache

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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

// key returns username, a NUL and the hex HMAC-SHA256 of (username, password) under the
// process key. The MAC is fixed-length at the end, so two different pairs never share a key;
// the username is MACed too (length-prefixed) so that equal passwords of two users do not show
// as equal verifiers.
func (k keyer) key(username, password string) string {
	m := hmac.New(sha256.New, k.secret[:])
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(username)))
	m.Write(n[:])
	m.Write([]byte(username))
	m.Write([]byte(password))
	var sum [sha256.Size]byte
	return username + "\x00" + hex.EncodeToString(m.Sum(sum[:0]))
}
