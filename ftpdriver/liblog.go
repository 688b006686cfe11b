package ftpdriver

import (
	"fmt"
	"log/slog"
	"strings"
)

// libLogger routes goftp's own log lines to slog. goftp's session id is shared by all
// sessions of one Serve call, so it is dropped; djftpd logs commands and replies
// itself, with its own session id and the PASS argument redacted.
type libLogger struct {
	log   *slog.Logger
	quiet bool // log is above DEBUG: only a panic report is logged (goftp calls Print twice a session)
}

func (l libLogger) Print(_ string, message any) {
	if s, ok := message.(string); ok && l.quiet && !strings.HasPrefix(s, panicPrefix) {
		return
	}
	l.line(fmt.Sprint(message))
}
func (l libLogger) Printf(_ string, format string, v ...any) {
	l.line(fmt.Sprintf(format, v...))
}
func (l libLogger) PrintCommand(string, string, string) {}
func (l libLogger) PrintResponse(string, int, string)   {}

// panicPrefix starts goftp's report of a handler's panic.
const panicPrefix = "handler crashed"

func (l libLogger) line(msg string) {
	if strings.HasPrefix(msg, panicPrefix) {
		// goftp recovered a panic in a handler: a bug of ours, never the client's.
		// goftp defect: it recovers the panic itself and reports it only as this log
		// line (no hook, no error), so the prefix is how djftpd learns of it.
		l.log.Error("command handler panicked", "detail", msg)
		return
	}
	l.log.Debug("goftp", "detail", msg)
}
