package ftpdriver

import (
	"time"

	"github.com/djftpd/djftpd/access"
	"github.com/djftpd/djftpd/djangoclient"
)

// emit reports one event of this session (access.Emit stamps it).
func (s *session) emit(e djangoclient.Event) {
	e.Protocol = s.protocol()
	access.Emit(s.srv.events, e, s.id, s.peer, s.user)
}

// protocol is what Django and the events are told: "ftps" once the control connection
// is under TLS, else "ftp".
func (s *session) protocol() string {
	if s.conn.tls != nil {
		return "ftps"
	}
	return "ftp"
}

// transferEvent reports the end of a transfer; a failed one is "incomplete".
func (s *session) transferEvent(complete, incomplete, virtual string, n int64, started time.Time, err error) {
	s.emit(access.TransferEvent(complete, incomplete, virtual, n, started, err))
}
