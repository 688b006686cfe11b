package access

import (
	"net/netip"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
)

// EventSink receives the events of every session (DESIGN.md §2 event types); the
// sidecar's is the djangoclient event queue. Emit must not block: it runs inside
// protocol commands.
type EventSink interface {
	Emit(e djangoclient.Event)
}

// Emit stamps e with what every event of a session shares (time, session id, client
// address, and the username once logged in) and sends it to sink.
func Emit(sink EventSink, e djangoclient.Event, session string, clientIP netip.Addr, u *User) {
	e.Time = time.Now().UTC()
	e.Session = session
	e.ClientIP = clientIP.String()
	if u != nil {
		e.Username = &u.grant.Username
	}
	sink.Emit(e)
}

// TransferEvent is the event that ends a transfer begun at started: typ complete, or
// incomplete when err is not nil.
func TransferEvent(complete, incomplete, path string, n int64, started time.Time, err error) djangoclient.Event {
	typ := complete
	if err != nil {
		typ = incomplete
	}
	ms := time.Since(started).Milliseconds()
	return djangoclient.Event{Type: typ, Path: &path, Bytes: &n, DurationMS: &ms}
}
