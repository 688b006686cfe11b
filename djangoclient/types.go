package djangoclient

import (
	"errors"
	"time"
)

// Sentinels returned by Authenticate. Callers map them to FTP replies with errors.Is
// (ftpdriver/errors.go); every other failure is wrapped in one of these.
var (
	// ErrInvalidCredentials is Django's 401: unknown user, wrong password, inactive, not
	// allowed or locked out. It is the only answer that is the user's fault.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrRejected is Django's 403 (the secrets differ, or the clocks are more than 300 s
	// apart) or an answer whose signature does not verify: a configuration fault.
	ErrRejected = errors.New("request rejected by django")
	// ErrUnavailable covers 5xx answers, timeouts and refused connections after the retries.
	ErrUnavailable = errors.New("django unavailable")
	// ErrBadGrant is a 200 answer that must not be trusted: malformed JSON, an unknown
	// permission letter, a relative home or a home outside the configured home root.
	ErrBadGrant = errors.New("invalid grant from django")
)

// AuthRequest is the body of POST {DJANGO_URL}auth/ (DESIGN.md section 2).
type AuthRequest struct {
	Username string `json:"username"`
	Password string `json:"password"`
	ClientIP string `json:"client_ip"`
	Protocol string `json:"protocol"` // "ftp" or "ftps"
	Session  string `json:"session"`
}

// Grant is a verified 200 answer of the auth endpoint: what the user may do, and where.
type Grant struct {
	Username string // canonical username as Django knows it
	Home     string // absolute, clean, inside the configured home root
	Perms    string // pyftpdlib letters, a subset of "elradfmwMT"
	Welcome  string // text for the 230 reply; may hold several lines
	// TTL is how long the answer may be cached; zero means the sidecar's default, unless
	// NoCache is set.
	TTL time.Duration
	// NoCache is Django's "ttl": 0: the answer must not be cached at all (no fresh entry,
	// no stale copy).
	NoCache     bool
	QuotaBytes  *int64 // nil: no quota
	MaxSessions *int   // nil: no per-user session limit
}

// Can reports whether the grant holds permission letter p.
func (g Grant) Can(p byte) bool {
	for i := 0; i < len(g.Perms); i++ {
		if g.Perms[i] == p {
			return true
		}
	}
	return false
}

// PermLetters lists every permission letter djftpd knows, in pyftpdlib's order.
const PermLetters = "elradfmwMT"

// Event types sent to POST {DJANGO_URL}events/ (DESIGN.md §2).
const (
	EventConnect                = "connect"
	EventDisconnect             = "disconnect"
	EventLogin                  = "login"
	EventLoginFailed            = "login_failed"
	EventLogout                 = "logout"
	EventFileSent               = "file_sent"
	EventFileReceived           = "file_received"
	EventIncompleteFileSent     = "incomplete_file_sent"
	EventIncompleteFileReceived = "incomplete_file_received"
	EventFileDeleted            = "file_deleted"
	EventFileRenamed            = "file_renamed"
	EventDirectoryCreated       = "directory_created"
	EventDirectoryDeleted       = "directory_deleted"
)

// Event is one FTP action reported to Django. Paths are as the FTP user sees them ("/"
// is the home). Pointers are JSON null when absent. Passwords never appear.
type Event struct {
	ID         string    `json:"id"` // unique; Django drops an ID it has seen
	Type       string    `json:"type"`
	Time       time.Time `json:"time"` // RFC 3339
	Session    string    `json:"session"`
	Username   *string   `json:"username"`
	ClientIP   string    `json:"client_ip"`
	Path       *string   `json:"path"`
	ToPath     *string   `json:"to_path"`
	Bytes      *int64    `json:"bytes"`
	DurationMS *int64    `json:"duration_ms"`
}
