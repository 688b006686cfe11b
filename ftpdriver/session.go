package ftpdriver

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"path"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	goftp "goftp.io/server/v2"

	"github.com/djftpd/djftpd/access"
	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/storage"
)

// session is djftpd's state for one control connection. goftp runs a session's
// commands one at a time on one goroutine, so only the fields under dataMu are shared
// (with Shutdown).
type session struct {
	srv         *Server
	id          string
	conn        *controlConn
	lib         *goftp.Session // set at each dispatch
	log         *slog.Logger   // every line with the session id, client IP and user (logh)
	logh        sessionLog
	peer        netip.Addr // the client: control peer or PROXY source, unmapped
	admitted    bool       // counted by the core's connection limits and known to Shutdown
	releaseConn func()     // uncounts it
	connectedAt time.Time

	reqUser     string              // from USER, waiting for PASS
	grant       *djangoclient.Grant // nil until logged in
	fs          storage.FS          // the user's home; every file operation goes through it
	cwd         string              // virtual: "/" is the home
	renameFrom  string              // relative path from RNFR, for RNTO
	restOffset  int64               // from REST, used by the next RETR/STOR
	asciiType   bool                // TYPE A with conversion on: line ends converted (ascii.go)
	attempts    *access.Attempts    // failed logins on this connection
	user        *access.User        // nil until logged in; grant and root are its
	pasv        net.Listener        // pending passive listener, nil if none
	pasvExpiry  *time.Timer         // closes pasv after DataTimeout unused
	pasvRelease func()              // gives pasv's slot back to the per-address count
	active      netip.AddrPort      // pending PORT/EPRT target, zero if none
	protP       bool                // PROT P: data connections use TLS
	tlsConf     *tls.Config         // the session's own TLS configuration (sessionTLS)
	mlstFacts   map[string]bool     // OPTS MLST selection; nil means every fact
	hashName    string              // OPTS HASH selection; empty means SHA-256
	endReason   string              // why the session is ending, when it is its own doing (outcome)
	bytesIn     int64               // file bytes uploaded, for the session-end line
	bytesOut    int64               // file bytes downloaded

	live liveState // what the ops listener's /sessions sees (sessions.go)

	dataMu   sync.Mutex
	dataConn net.Conn // open data connection, for abort on forced shutdown
}

// newSessionID is a session's id: 64 random bits, 16 hex digits. They come from the
// runtime's ChaCha8 generator (math/rand/v2: per thread, seeded from the kernel at
// start, unpredictable from its outputs), not a getrandom call per session. The id
// names a session in logs, events, Django's session table and a signed
// /sessions/close; it grants nothing, and 64 random bits keep it unique as before.
func newSessionID() string {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], rand.Uint64())
	return hex.EncodeToString(b[:])
}

func newSession(srv *Server, raw net.Conn) *session {
	s := &session{
		srv:         srv,
		id:          newSessionID(),
		cwd:         "/",
		connectedAt: time.Now(),
		attempts:    srv.access.NewAttempts(),
	}
	s.peer = addrOf(raw.RemoteAddr())
	s.logh = sessionLog{inner: srv.log.Handler(), s: s}
	s.log = slog.New(&s.logh)
	s.conn = &controlConn{raw: raw, sess: s}
	return s
}

// sessionOf finds djftpd's session behind a goftp session (see sessionAddr).
func sessionOf(gs *goftp.Session) *session {
	if a, ok := gs.RemoteAddr().(*sessionAddr); ok {
		return a.sess
	}
	return nil
}

// readDeadline is when the next control read gives up: the login deadline before
// login, the idle timeout after.
func (s *session) readDeadline() time.Time {
	if s.grant == nil {
		return s.connectedAt.Add(s.srv.cfg.LoginTimeout)
	}
	return time.Now().Add(s.srv.cfg.IdleTimeout)
}

// reply writes one reply. A text of several lines becomes a multi-line reply
// ("230-first", ..., "230 last"), which goftp's WriteMessage cannot produce. Middle
// lines that start with a space are sent as they are (RFC 2389 FEAT, RFC 3659 MLST).
func (s *session) reply(code int, text string) {
	text = strings.ReplaceAll(text, "\r", "")
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	var b strings.Builder
	for i, line := range lines {
		switch {
		case i == len(lines)-1:
			fmt.Fprintf(&b, "%d %s\r\n", code, line)
		case i > 0 && strings.HasPrefix(line, " "):
			b.WriteString(line + "\r\n")
		default:
			fmt.Fprintf(&b, "%d-%s\r\n", code, line)
		}
	}
	if s.srv.debugLog {
		s.log.Debug("reply", "code", code, "text", lines[0])
	}
	if _, err := s.conn.Write([]byte(b.String())); err != nil {
		s.log.Debug("write reply failed", "err", err)
	}
}

// close ends the control connection from inside a command.
func (s *session) close() {
	if s.lib != nil {
		s.lib.Close()
		return
	}
	_ = s.conn.Close()
}

// resolve turns a client's path argument into the virtual path the user sees and the
// path relative to the home that os.Root takes. Cleaning an absolute path removes every
// "..", and os.Root refuses symlinks that lead outside.
func (s *session) resolve(arg string) (virtual, rel string, err error) {
	if strings.IndexByte(arg, 0) >= 0 || !utf8.ValidString(arg) {
		return "", "", errBadPath
	}
	if !strings.HasPrefix(arg, "/") {
		arg = s.cwd + "/" + arg
	}
	virtual = path.Clean(arg)
	rel = strings.TrimPrefix(virtual, "/")
	if rel == "" {
		rel = "."
	}
	return virtual, rel, nil
}

// setDataConn records the open data connection so a forced shutdown can abort it.
func (s *session) setDataConn(c net.Conn) {
	s.dataMu.Lock()
	s.dataConn = c
	if c != nil && s.live.kicked.Load() {
		_ = c.Close() // closed by an administrator just before the transfer began
	}
	s.dataMu.Unlock()
}

// abort closes the data and control connections; it is the forced end of Shutdown and
// may run on another goroutine.
func (s *session) abort() {
	s.dataMu.Lock()
	if s.dataConn != nil {
		_ = s.dataConn.Close()
	}
	s.dataMu.Unlock()
	_ = s.conn.raw.Close()
}

// end releases what the session holds; controlConn.Close calls it once.
func (s *session) end() {
	s.closePendingData()
	if s.user != nil {
		s.user.Close()
	}
	if s.grant != nil {
		s.emit(djangoclient.Event{Type: djangoclient.EventLogout})
	}
	ms := time.Since(s.connectedAt).Milliseconds()
	s.emit(djangoclient.Event{Type: djangoclient.EventDisconnect, DurationMS: &ms})
	// The session's one INFO line when all went well (start and login are DEBUG); the
	// user is on every line once logged in (sessionLog).
	attrs := []any{"duration_ms", ms, "bytes_in", s.bytesIn, "bytes_out", s.bytesOut, "outcome", s.outcome()}
	if n := s.attempts.Count(); n > 0 {
		attrs = append(attrs, "failed_logins", n)
	}
	s.log.Info("session end", attrs...)
	s.srv.removeSession(s)
}

// outcome is how the session ended, for its last log line: an administrator, the
// session's own reason (quit, timeout, ...), a shutdown, else the client closing.
func (s *session) outcome() string {
	s.srv.stateMu.RLock()
	stopping := s.srv.shuttingDown
	s.srv.stateMu.RUnlock()
	switch {
	case s.live.kicked.Load():
		return "closed_by_admin"
	case s.endReason != "":
		return s.endReason
	case stopping:
		return "shutdown"
	}
	return "client_closed"
}

// ctx is the context of the session's storage calls: it ends when a forced shutdown
// ends the server's.
func (s *session) ctx() context.Context { return s.srv.baseCtx }

// localRoot is the home's os.Root when it is a local directory, else nil.
func (s *session) localRoot() *os.Root { return s.user.Root() }
