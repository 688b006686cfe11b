package ftpdriver

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// XferLog writes one line per transfer in the classic wu-ftpd/vsftpd xferlog format,
// for the log analysers that read it:
//
//	current-time transfer-time remote-host bytes filename type action direction
//	access-mode username service auth-method auth-user status
type XferLog struct {
	mu sync.Mutex
	w  io.Writer
}

// NewXferLog writes to w (an append-only file, typically).
func NewXferLog(w io.Writer) *XferLog { return &XferLog{w: w} }

func (x *XferLog) record(end time.Time, d time.Duration, host string, n int64, path, direction, user string, complete bool) error {
	status := "c"
	if !complete {
		status = "i"
	}
	// The format separates fields by spaces and has no quoting: blanks in names become _.
	path = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return '_'
		}
		return r
	}, path)
	line := fmt.Sprintf("%s %d %s %d %s b _ %s r %s ftp 0 * %s\n",
		end.Format("Mon Jan _2 15:04:05 2006"), int64(d.Round(time.Second)/time.Second),
		host, n, path, direction, user, status)
	x.mu.Lock()
	defer x.mu.Unlock()
	_, err := io.WriteString(x.w, line)
	return err
}
