package ftpdriver

import (
	"errors"

	"github.com/djftpd/djftpd/access"
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
	user, err := s.srv.access.Login(s.srv.baseCtx, access.LoginRequest{
		Username: username,
		Password: param,
		ClientIP: s.peer,
		Protocol: s.protocol(),
		Session:  s.id,
	})
	s.loginOutcome(username, user, err)
	if err == nil {
		s.refreshUsage()
	}
}

// loginOutcome is the one place for a login's side effects in FTP: the reply, the log
// line, the event, and closing after a ban or the last attempt (access.Login has
// waited the failed-login delay and counted the ban). Server faults never count as
// attempts.
func (s *session) loginOutcome(username string, u *access.User, err error) {
	s.srv.cfg.Metrics.logins.WithLabelValues(loginResult(err)).Inc()
	if err == nil {
		g := u.Grant()
		s.user, s.grant, s.fs = u, g, u.FS()
		s.publishState("PASS") // before the 230: a client told it is logged in is listed so
		s.cwd = "/"
		if s.srv.debugLog { // INFO has the session-end line
			s.log.Debug("login", "home", g.Home, "perms", g.Perms)
		}
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
	switch {
	case level == levelInfo:
		s.log.Info("login failed", "user", username)
	case level == levelWarn:
		s.log.Warn("login failed", "user", username, "err", err)
	case errors.Is(err, errHomeUnusable):
		s.log.Error("login failed: the home directory cannot be created or opened (check DJFTPD_HOME_ROOT and its disk)",
			"user", username, "err", err)
	default:
		s.log.Error("login failed: configuration fault (check DJFTPD_SECRET, DJFTPD_HOME_ROOT and the Django answer)",
			"user", username, "err", err)
	}
	s.emit(djangoclient.Event{Type: djangoclient.EventLoginFailed, Username: &username})
	if level == levelInfo {
		if errors.Is(err, access.ErrBanned) {
			s.log.Warn("address banned after repeated failed logins", "ban", s.srv.cfg.BanTime.String())
			closeConn, s.endReason = true, "banned"
		}
		if s.attempts.Fail() {
			s.log.Warn("too many failed logins, closing", "attempts", s.attempts.Count())
			closeConn, s.endReason = true, "login_failures"
		}
	}
	if closeConn && s.endReason == "" {
		s.endReason = "login_error" // 421: Django unavailable, or a configuration fault
	}
	s.reply(code, text)
	if closeConn {
		s.close()
	}
}

// The username rules are the session core's, shared with SFTP.
const (
	maxUsernameBytes  = access.MaxUsernameBytes
	maxLoggedUsername = access.MaxLoggedUsername
)

// validateUsername accepts a USER argument fit to send to Django (access.ValidUsername).
func validateUsername(name string) error { return access.ValidUsername(name) }

// loggedUsername is what a failed login's event and log line keep (access.LoggedUsername).
func loggedUsername(name string) string { return access.LoggedUsername(name) }
