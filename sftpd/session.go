// Package sftpd is djftpd's SFTP front end: an SSH server (golang.org/x/crypto/ssh) whose only
// service is the sftp subsystem, served by github.com/pkg/sftp's request server over djftpd's
// own handlers; downloads from local homes are answered by readServer, underneath it, through
// the same handlers. Every rule both protocols share (login through Django and the cache, the
// failed-login delay, bans, limits, the grant's permission letters, the home, quota, events)
// belongs to the session core behind Gate and User; this package maps SSH and SFTP onto it.
package sftpd

import (
	"context"
	"net/netip"
	"os"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/storage"
)

// Gate is the session core as the SFTP front end uses it.
type Gate interface {
	// Admit is asked when a connection arrives, before the SSH handshake: bans and the
	// connection limits. The Conn is closed once, when the connection ends.
	Admit(peer netip.AddrPort) (Conn, error)
}

// Conn is one admitted connection of the core.
type Conn interface {
	// Login authenticates r (Username and Password or PublicKey; the core fills the
	// address, protocol "sftp" and session) and opens the user's session: session limits,
	// home. A refusal has had its failed-login delay and counted as an attempt; when the
	// connection must end (too many attempts, address banned) the error implements Closing.
	Login(ctx context.Context, r djangoclient.AuthRequest) (User, error)
	// KeyBelongs asks whether the public key r.PublicKey may log r.Username in, without
	// counting a failure: SSH clients offer several keys in turn before signing with one.
	KeyBelongs(ctx context.Context, r djangoclient.AuthRequest) bool
	// Close ends the connection's accounting (limits, disconnect event).
	Close()
}

// Closing is implemented by a Login error after which the connection must be closed.
type Closing interface{ Closing() bool }

// User is a logged-in session of the core.
type User interface {
	// Name is the granted username.
	Name() string
	// Can reports whether the grant holds permission letter p ("elradfmwMT").
	Can(p byte) bool
	// Root is the user's home when it is a local directory; every file operation goes
	// through it (atomic uploads, writes at any offset). Nil for an object-storage home.
	Root() *os.Root
	// FS is the user's home in the storage layer; used when Root is nil (object storage).
	FS() storage.FS
	// Emit reports an event; the core fills id, time, session, user, address and protocol.
	Emit(e djangoclient.Event)
	// Close ends the session (logout event, session count, home closed). Called once.
	Close()
}

// QuotaUser is a User with a quota: the core's record of the user's usage, shared by the
// user's sessions of both protocols. A User without a quota need not implement it.
type QuotaUser interface {
	User
	// GuardQuota starts an upload that replaces credit bytes (the old file's, for an
	// upload that truncates or replaces it). A user at or over quota gets an error, whose
	// text the client sees ("quota exceeded"); a nil QuotaGuard means no quota.
	GuardQuota(credit int64) (QuotaGuard, error)
	// AddUsage records a change of the user's usage outside uploads (a removed file).
	AddUsage(delta int64)
}

// QuotaGuard is one upload's share of the quota, reserved as the data flows.
type QuotaGuard interface {
	// Reserve takes more of what the quota leaves and returns how much (0: none left).
	Reserve() int64
	// Release ends the upload: its reservation goes, the change it made (delta bytes) stays.
	Release(delta int64)
}
