package ftpdriver

import (
	"time"

	"github.com/djftpd/djftpd/djangoclient"
)

// emit reports one event; it fills in what every event of the session shares.
func (s *session) emit(e djangoclient.Event) {
	e.Time = time.Now().UTC()
	e.Session = s.id
	e.ClientIP = s.peer.String()
	if s.grant != nil {
		e.Username = &s.grant.Username
	}
	s.srv.events.Emit(e)
}

// transferEvent reports the end of a transfer; a failed one is "incomplete".
func (s *session) transferEvent(complete, incomplete, virtual string, n int64, started time.Time, err error) {
	typ := complete
	if err != nil {
		typ = incomplete
	}
	ms := time.Since(started).Milliseconds()
	s.emit(djangoclient.Event{Type: typ, Path: &virtual, Bytes: &n, DurationMS: &ms})
}
