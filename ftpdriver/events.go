package ftpdriver

import (
	"time"

	"github.com/djftpd/djftpd/access"
	"github.com/djftpd/djftpd/djangoclient"
)

// emit reports one event of this session (access.Emit stamps it).
func (s *session) emit(e djangoclient.Event) {
	access.Emit(s.srv.events, e, s.id, s.peer, s.user)
}

// transferEvent reports the end of a transfer; a failed one is "incomplete".
func (s *session) transferEvent(complete, incomplete, virtual string, n int64, started time.Time, err error) {
	s.emit(access.TransferEvent(complete, incomplete, virtual, n, started, err))
}
