package ftpdriver

import (
	"context"
	"log/slog"
)

// sessionLog is the handler behind a session's logger: the server's handler, with the
// session id, the client IP and, once logged in, the user put before each record's own
// attributes. slog.Logger.With would format them once per session, into a copy of
// the handler (and again, with the user, at login); a session writes one line at INFO,
// so adding them per line costs less and keeps nothing per session but this struct.
type sessionLog struct {
	inner slog.Handler
	s     *session
}

func (h *sessionLog) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

func (h *sessionLog) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(slog.String("session", h.s.id), slog.String("client_ip", h.s.peer.String()))
	if u := h.s.liveUsername(); u != "" { // liveUsername: lines may come from other goroutines
		out.AddAttrs(slog.String("user", u))
	}
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(a)
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *sessionLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &sessionLog{inner: h.inner.WithAttrs(as), s: h.s}
}

func (h *sessionLog) WithGroup(name string) slog.Handler {
	return &sessionLog{inner: h.inner.WithGroup(name), s: h.s}
}
