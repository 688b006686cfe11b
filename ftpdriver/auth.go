package ftpdriver

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/djftpd/djftpd/djangoclient"
)

func (s *session) handleUSER(param string) {
	if s.grant != nil {
		s.reply(530, "Already logged in; reconnect to change user")
		return
	}
	if err := validateUsername(param); err != nil {
		s.reqUser = ""
		s.log.Info("USER refused", "user", loggedUsername(param), "err", err)
		s.reply(501, "Invalid user name")
		return
	}
	s.reqUser = param
	s.reply(331, "Password required")
}

func (s *session) handlePASS(param string) {
	if s.grant != nil {
		s.reply(230, "Already logged in")
		return
	}
	if s.reqUser == "" {
		s.reply(503, "Send USER first")
		return
	}
	username := s.reqUser
	s.reqUser = ""
	protocol := "ftp"
	if s.conn.tls != nil {
		protocol = "ftps"
	}
	grant, err := s.srv.auth.Authenticate(s.srv.baseCtx, djangoclient.AuthRequest{
		Username: username,
		Password: param,
		ClientIP: s.peer.String(),
		Protocol: protocol,
		Session:  s.id,
	})
	if err == nil {
		if err = s.srv.users.acquire(grant.Username, grant.MaxSessions); err == nil {
			s.countedUser = grant.Username
		}
	}
	if err == nil {
		err = s.openHome(grant)
	}
	s.loginOutcome(username, grant, err)
	if err == nil {
		s.refreshUsage()
	}
}

// openHome opens the granted home as the session's os.Root, creating it if allowed.
// Both go through the server's root on DJFTPD_HOME_ROOT, so a symlink planted under it
// cannot lead the home out of it.
func (s *session) openHome(g djangoclient.Grant) error {
	rel, err := filepath.Rel(s.srv.cfg.HomeRoot, g.Home)
	if err != nil || !filepath.IsLocal(rel) {
		return fmt.Errorf("home %q is not inside %q: %w", g.Home, s.srv.cfg.HomeRoot, djangoclient.ErrBadGrant)
	}
	home, err := s.srv.store.Home(s.ctx(), g.Home, s.srv.cfg.CreateHome)
	if err != nil {
		return fmt.Errorf("open home: %w: %w", djangoclient.ErrBadGrant, err)
	}
	s.fs = home
	return nil
}

// loginOutcome is the one place for a login's side effects: the reply, the log line,
// the failed-login delay and the attempt count. Server faults never count as attempts.
func (s *session) loginOutcome(username string, g djangoclient.Grant, err error) {
	s.srv.cfg.Metrics.logins.WithLabelValues(loginResult(err)).Inc()
	if err == nil {
		s.grant = &g
		s.cwd = "/"
		s.log = s.log.With("user", g.Username)
		s.log.Info("login", "home", g.Home, "perms", g.Perms)
		welcome := g.Welcome
		if welcome == "" {
			welcome = "Login successful"
		}
		s.emit(djangoclient.Event{Type: djangoclient.EventLogin})
		s.reply(230, welcome)
		return
	}
	code, text, closeConn, level := loginReply(err)
	username = loggedUsername(username)
	switch level {
	case levelInfo:
		s.log.Info("login failed", "user", username)
	case levelWarn:
		s.log.Warn("login failed", "user", username, "err", err)
	default:
		s.log.Error("login failed: configuration fault (check DJFTPD_SECRET, DJFTPD_HOME_ROOT and the Django answer)",
			"user", username, "err", err)
	}
	s.emit(djangoclient.Event{Type: djangoclient.EventLoginFailed, Username: &username})
	if level == levelInfo {
		s.failedLogins++
		if s.srv.defend.failed(s.peer) {
			s.log.Warn("address banned after repeated failed logins", "ban", s.srv.cfg.BanTime.String())
			closeConn = true
		}
		s.sleep(s.srv.cfg.FailedLoginDelay)
		if s.failedLogins >= s.srv.cfg.MaxLoginAttempts {
			s.log.Warn("too many failed logins, closing", "attempts", s.failedLogins)
			closeConn = true
		}
	}
	s.reply(code, text)
	if closeConn {
		s.close()
	}
}

// sleep waits d, or less if the server is stopping.
func (s *session) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.srv.baseCtx.Done():
	}
}

// maxUsernameBytes bounds a USER argument; maxLoggedUsername is Django's username
// length (AbstractUser), what a failed login's event and log line keep of it.
const (
	maxUsernameBytes  = 256
	maxLoggedUsername = 150
)

var errBadUsername = errors.New("username too long, not UTF-8 or holding control characters")

// validateUsername accepts a USER argument fit to send to Django and to store: UTF-8,
// at most maxUsernameBytes, no control character (a NUL stops PostgreSQL).
func validateUsername(name string) error {
	if len(name) > maxUsernameBytes || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return errBadUsername
	}
	return nil
}

// loggedUsername is what the event and log line of a failed login keep of the typed
// name: control characters and invalid bytes replaced by U+FFFD, cut to
// maxLoggedUsername bytes on a rune boundary.
func loggedUsername(name string) string {
	var b strings.Builder
	for _, r := range name { // invalid bytes come as utf8.RuneError, i.e. U+FFFD
		if unicode.IsControl(r) {
			r = utf8.RuneError
		}
		if b.Len()+utf8.RuneLen(r) > maxLoggedUsername {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
