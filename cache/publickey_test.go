package cache

import (
	"fmt"
	"testing"

	"github.com/djftpd/djftpd/djangoclient"
)

const aliceKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDLJqFz6jTpJoj75vQx33dXQevfztC785C/kjOCauAB+"

// TestPublicKeyLoginsAreCachedApart: a key login is cached by username and key, and its
// entry never answers a password login, even one whose password is the (public) key line.
func TestPublicKeyLoginsAreCachedApart(t *testing.T) {
	up := &fakeUpstream{answer: func(r djangoclient.AuthRequest) (djangoclient.Grant, error) {
		if r.Username == "alice" && r.PublicKey == aliceKey && r.Password == "" {
			return djangoclient.Grant{Username: "alice", Home: "/srv/ftp/alice", Perms: "elr"}, nil
		}
		return djangoclient.Grant{}, fmt.Errorf("fake: %w", djangoclient.ErrInvalidCredentials)
	}}
	c, _ := newTestCache(Config{}, up)
	byKey := req("alice", "")
	byKey.PublicKey = aliceKey
	otherKey := byKey
	otherKey.PublicKey = aliceKey[:len(aliceKey)-2] + "A+"

	lookup(t, c, up, byKey, ResultMiss, nil, 1)
	lookup(t, c, up, byKey, ResultHit, nil, 1)
	lookup(t, c, up, req("alice", aliceKey), ResultMiss, djangoclient.ErrInvalidCredentials, 2)
	lookup(t, c, up, otherKey, ResultMiss, djangoclient.ErrInvalidCredentials, 3)
	c.Purge("alice")
	lookup(t, c, up, byKey, ResultMiss, nil, 4)
}
