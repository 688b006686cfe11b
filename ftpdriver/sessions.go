package ftpdriver

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Live sessions (DESIGN.md §10): the ops listener lists the open sessions and ends
// some of them on an administrator's request. A session publishes what it is doing
// into its liveState at each command and transfer; the lister only reads liveState
// (and fields that never change after admission), so it never races the session's
// own goroutine.

// MaxSessionsPage bounds one page of Sessions.
const MaxSessionsPage = 1000

// SessionInfo is one live session as the ops listener reports it.
type SessionInfo struct {
	ID          string        `json:"id"`
	Protocol    string        `json:"protocol"` // "ftp" or "ftps" (control connection protected)
	Username    *string       `json:"username"` // nil before login
	ClientIP    string        `json:"client_ip"`
	ConnectedAt time.Time     `json:"connected_at"`
	Command     *string       `json:"command"`  // the command running now; nil when idle
	Transfer    *TransferInfo `json:"transfer"` // the file transfer running now, if any
}

// TransferInfo is a running file transfer.
type TransferInfo struct {
	Command     string    `json:"command"` // RETR, STOR, APPE, STOU
	Direction   string    `json:"direction"`
	Path        string    `json:"path"`
	Started     time.Time `json:"started"`
	Bytes       int64     `json:"bytes"`            // moved so far
	BytesPerSec float64   `json:"bytes_per_second"` // average since the transfer started
}

// liveState is what a session shares with the lister and CloseSessions.
type liveState struct {
	kicked atomic.Bool // closed by an administrator: the next control read answers 421

	mu       sync.Mutex
	username string
	secure   bool
	command  string
	xfer     *liveTransfer
}

// liveTransfer locates a transfer's progress without counting bytes in the copy loop
// (which would hide the file from sendfile/splice): the file's offset moves with the
// data, for both directions, with or without TLS.
type liveTransfer struct {
	cmd, path string
	started   time.Time
	file      *os.File
	base      int64         // the file offset when the transfer began
	moved     *atomic.Int64 // bytes counted instead, when there is no file (object storage)
}

// publishCommand records, on the session's goroutine, that verb runs; the returned
// func records that it ended. Login state and TLS are read here, where it is safe.
func (s *session) publishCommand(verb string) func() {
	s.publishState(verb)
	return func() { s.publishState("") }
}

func (s *session) publishState(verb string) {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	s.live.command = verb
	s.live.secure = s.conn.tls != nil
	if s.grant != nil {
		s.live.username = s.grant.Username
	}
}

// trackTransfer publishes a file transfer on f that starts at file offset base; the
// returned func unpublishes it and must run before f is closed.
func (s *session) trackTransfer(cmd, virtual string, f *os.File, base int64) func() {
	s.live.mu.Lock()
	s.live.xfer = &liveTransfer{cmd: cmd, path: virtual, started: time.Now(), file: f, base: base}
	s.live.mu.Unlock()
	return func() {
		s.live.mu.Lock()
		s.live.xfer = nil
		s.live.mu.Unlock()
	}
}

// trackCounted publishes a transfer whose bytes are counted in moved: one to or from
// object storage, with no file offset to read (and no sendfile/splice to keep).
func (s *session) trackCounted(cmd, virtual string, moved *atomic.Int64) func() {
	s.live.mu.Lock()
	s.live.xfer = &liveTransfer{cmd: cmd, path: virtual, started: time.Now(), moved: moved}
	s.live.mu.Unlock()
	return func() {
		s.live.mu.Lock()
		s.live.xfer = nil
		s.live.mu.Unlock()
	}
}

// countingReader counts what it reads into n.
type countingReader struct {
	r io.Reader
	n *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	m, err := c.r.Read(p)
	c.n.Add(int64(m))
	return m, err
}

// info is the session's SessionInfo at now.
func (s *session) info(now time.Time) SessionInfo {
	si := SessionInfo{ID: s.id, Protocol: "ftp", ClientIP: s.peer.String(), ConnectedAt: s.connectedAt.UTC()}
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	if s.live.secure {
		si.Protocol = "ftps"
	}
	if u := s.live.username; u != "" {
		si.Username = &u
	}
	if c := s.live.command; c != "" {
		si.Command = &c
	}
	if x := s.live.xfer; x != nil {
		var n int64
		if x.moved != nil {
			n = x.moved.Load()
		} else if pos, err := x.file.Seek(0, io.SeekCurrent); err == nil && pos > x.base {
			n = pos - x.base
		}
		ti := &TransferInfo{Command: x.cmd, Direction: direction(x.cmd), Path: x.path, Started: x.started.UTC(), Bytes: n}
		if d := now.Sub(x.started).Seconds(); d > 0 {
			ti.BytesPerSec = float64(n) / d
		}
		si.Transfer = ti
	}
	return si
}

// sessionKey orders sessions for paging: by connection time, then id.
type sessionKey struct {
	at int64 // unix nanoseconds
	id string
}

func (k sessionKey) String() string { return strconv.FormatInt(k.at, 10) + "." + k.id }

func compareKeys(a, b sessionKey) int {
	return cmp.Or(cmp.Compare(a.at, b.at), strings.Compare(a.id, b.id))
}

// ErrBadCursor is a cursor Sessions did not hand out.
var ErrBadCursor = errors.New("malformed session cursor")

// ParseCursor reads a cursor from a previous page; "" is the first page.
func ParseCursor(c string) (sessionKey, error) {
	if c == "" {
		return sessionKey{}, nil
	}
	at, id, ok := strings.Cut(c, ".")
	n, err := strconv.ParseInt(at, 10, 64)
	if !ok || err != nil || n < 0 || strconv.FormatInt(n, 10) != at || len(id) != 16 || strings.Trim(id, "0123456789abcdef") != "" {
		return sessionKey{}, fmt.Errorf("%w: %q", ErrBadCursor, c)
	}
	return sessionKey{at: n, id: id}, nil
}

// Sessions lists up to limit sessions (at most MaxSessionsPage) that come after the
// cursor, oldest first, and the cursor of the next page ("" when this is the last).
func (s *Server) Sessions(cursor string, limit int) ([]SessionInfo, string, error) {
	after, err := ParseCursor(cursor)
	if err != nil {
		return nil, "", err
	}
	if limit <= 0 || limit > MaxSessionsPage {
		limit = MaxSessionsPage
	}
	type keyed struct {
		k sessionKey
		s *session
	}
	s.stateMu.RLock()
	all := make([]keyed, 0, len(s.sessions))
	for sess := range s.sessions {
		k := sessionKey{at: sess.connectedAt.UnixNano(), id: sess.id}
		if cursor == "" || compareKeys(k, after) > 0 {
			all = append(all, keyed{k, sess})
		}
	}
	s.stateMu.RUnlock()
	slices.SortFunc(all, func(a, b keyed) int { return compareKeys(a.k, b.k) })
	next := ""
	if len(all) > limit {
		all = all[:limit]
		next = all[limit-1].k.String()
	}
	now := time.Now()
	out := make([]SessionInfo, 0, len(all))
	for _, e := range all {
		out = append(out, e.s.info(now))
	}
	return out, next, nil
}

// CloseSessions ends the session with this id, or every session logged in as
// username (one of the two is set). A running transfer is cut (an atomic upload is
// discarded and reported incomplete), the client gets 421 and the control connection
// is closed. It returns how many sessions it closed.
func (s *Server) CloseSessions(id, username string) int {
	if (id == "") == (username == "") {
		return 0
	}
	s.stateMu.Lock()
	defer s.stateMu.Unlock()
	now := time.Now()
	n := 0
	for sess := range s.sessions {
		if (id != "" && sess.id != id) || (username != "" && sess.liveUsername() != username) {
			continue
		}
		if sess.live.kicked.Swap(true) {
			continue // already closing
		}
		sess.dataMu.Lock()
		if sess.dataConn != nil {
			_ = sess.dataConn.Close()
		}
		sess.dataMu.Unlock()
		// Under stateMu, like Shutdown: a control read in progress wakes and answers 421,
		// a later one sees kicked before it sets its deadline (controlConn.Read).
		_ = sess.conn.raw.SetReadDeadline(now)
		sess.log.Info("session closed by an administrator")
		n++
	}
	s.cfg.Metrics.sessionsClosed.WithLabelValues("admin").Add(float64(n))
	return n
}

func (s *session) liveUsername() string {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	return s.live.username
}

// stopText is the 421 text for a session that must end at its next control read, or
// "" if it goes on. The caller holds stateMu (read).
func (s *session) stopText() string {
	switch {
	case s.srv.shuttingDown:
		return "Server shutting down, closing control connection"
	case s.live.kicked.Load():
		return "Session closed by an administrator"
	}
	return ""
}
