package access

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxUsernameBytes bounds a typed username; MaxLoggedUsername is Django's username length
// (AbstractUser), what a failed login's event and log line keep of it.
const (
	MaxUsernameBytes  = 256
	MaxLoggedUsername = 150
)

// ErrBadUsername: a typed username no protocol sends to Django.
var ErrBadUsername = errors.New("username too long, not UTF-8 or holding control characters")

// ValidUsername accepts a typed username fit to send to Django and to store: UTF-8, at most
// MaxUsernameBytes, no control character (a NUL stops PostgreSQL).
func ValidUsername(name string) error {
	if len(name) > MaxUsernameBytes || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return ErrBadUsername
	}
	return nil
}

// LoggedUsername is what the event and log line of a failed login keep of the typed name:
// control characters and invalid bytes replaced by U+FFFD, cut to MaxLoggedUsername bytes
// on a rune boundary.
func LoggedUsername(name string) string {
	var b strings.Builder
	for _, r := range name { // invalid bytes come as utf8.RuneError, i.e. U+FFFD
		if unicode.IsControl(r) {
			r = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(r) > MaxLoggedUsername {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
