package ftpdriver

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/storage"
)

// uploadTempPrefix names the hidden temporary files of atomic uploads; listings skip
// them.
const uploadTempPrefix = storage.UploadTempPrefix

// openingData is the usual 150 text.
const openingData = "Opening data connection"

// finishTransfer sends the final reply of a transfer command and logs it.
func (s *session) finishTransfer(cmd, virtual string, n int64, started time.Time, err error) {
	if transferStarted(err) {
		s.countBytes(cmd, n)
		s.srv.cfg.Metrics.transfer(cmd, n, time.Since(started), err)
		if x := s.srv.cfg.XferLog; x != nil && direction(cmd) != "listing" {
			dir := "o"
			if direction(cmd) == "upload" {
				dir = "i"
			}
			if xerr := x.record(time.Now(), time.Since(started), s.peer.String(), n, virtual, dir, s.grant.Username, err == nil); xerr != nil {
				s.log.Error("xferlog write failed", "err", xerr)
			}
		}
	}
	attrs := []any{"cmd", cmd, "path", virtual, "bytes", n,
		"duration_ms", time.Since(started).Milliseconds()}
	if err == nil {
		s.log.Info("transfer complete", attrs...)
		s.reply(226, fmt.Sprintf("Transfer complete, %d bytes", n))
		return
	}
	// An error no row names is the data connection failing mid-transfer.
	r := rowOr(err, rowOf(errDataClosed))
	switch r.err {
	case errNoDataChannel, errTLSRequired:
	case errTLSNotResumed:
		s.log.Warn("protected data connection refused: it did not resume the control connection's TLS session "+
			"(the client must reuse the control session on data connections, see README \"TLS\")", attrs...)
	case errDataOpen:
		s.log.Warn("data connection failed", append(attrs, "err", err)...)
	case errAborted:
		s.log.Info("transfer aborted by client", attrs...)
	case errPeerGone:
		s.log.Info("client went away during transfer", attrs...)
	case errQuotaExceeded:
		s.log.Info("upload over quota", attrs...)
	case errLocal:
		s.log.Error("transfer failed", append(attrs, "err", err)...)
	case errDataClosed:
		s.log.Info("transfer aborted", append(attrs, "err", err)...)
	default: // a file error opening the upload, after 150
		s.log.Debug("file operation refused", "cmd", cmd, "path", virtual, "err", err)
	}
	if r.code != 0 {
		s.reply(r.code, r.text)
	}
	if r.err == errAborted {
		s.reply(226, "ABOR successful")
	}
}

// countBytes adds a transfer's file bytes to the session's totals (listings are not
// counted).
func (s *session) countBytes(cmd string, n int64) {
	switch direction(cmd) {
	case "upload":
		s.bytesIn += n
	case "download":
		s.bytesOut += n
	}
}

// transferStarted tells a transfer that began (and so is reported, complete or not)
// from one refused before any data was moved.
func transferStarted(err error) bool {
	return !errors.Is(err, errNoDataChannel) && !errors.Is(err, errTLSRequired) && !errors.Is(err, errFileOpen)
}

// readDir lists a directory, or the entry itself for a file, whole: for STAT only
// (on the control connection); transfers stream with streamList.
func (s *session) readDir(rel string) ([]fs.FileInfo, error) {
	l, err := s.fs.List(s.ctx(), rel)
	if err != nil {
		return nil, err
	}
	return storage.ReadAll(s.ctx(), l)
}

// streamList writes line(fi) for every entry of l, page by page, so a directory of any
// size is never held in memory whole; it closes l.
func (s *session) streamList(c net.Conn, l storage.Lister, line func(fs.FileInfo) string) (int64, error) {
	defer l.Close()
	w := bufio.NewWriter(c)
	var n int64
	for {
		page, err := l.Next(s.ctx())
		for _, fi := range page {
			m, _ := w.WriteString(line(fi))
			n += int64(m)
		}
		if errors.Is(err, io.EOF) {
			return n, w.Flush()
		}
		if err != nil {
			_ = w.Flush()
			return n, err
		}
	}
}

// listArg drops ls-style options ("-la") that many clients put before the path.
func listArg(param string) string {
	fields := strings.Fields(param)
	for len(fields) > 0 && strings.HasPrefix(fields[0], "-") {
		fields = fields[1:]
	}
	return strings.Join(fields, " ")
}

func (s *session) handleLIST(param string) { s.list("LIST", param, true) }
func (s *session) handleNLST(param string) { s.list("NLST", param, false) }

func (s *session) list(cmd, param string, long bool) {
	virtual, rel, err := s.resolve(listArg(param))
	var l storage.Lister
	if err == nil {
		l, err = s.fs.List(s.ctx(), rel)
	}
	if err != nil {
		s.closePendingData()
		s.replyFileError(cmd, virtual, err)
		return
	}
	started := time.Now()
	var n int64
	now := time.Now()
	line := func(fi fs.FileInfo) string { return fi.Name() + "\r\n" }
	if long {
		line = func(fi fs.FileInfo) string { return listLine(fi, now) }
	}
	err = s.withData(openingData, 0, func(c net.Conn) (err error) {
		n, err = s.streamList(c, l, line)
		return err
	})
	_ = l.Close() // when the data connection never opened
	s.finishTransfer(cmd, virtual, n, started, err)
}

func (s *session) handleRETR(param string) {
	offset := s.restOffset
	s.restOffset = 0
	virtual, rel, err := s.resolve(param)
	var f io.ReadCloser
	var fi fs.FileInfo
	if err == nil {
		if fi, err = s.fs.Stat(s.ctx(), rel); err == nil && !fi.Mode().IsRegular() {
			err = errIsDir
		}
	}
	if err == nil {
		err = s.checkRestart(offset, fi.Size())
	}
	if err == nil {
		f, err = s.fs.Open(s.ctx(), rel, offset) // local: an *os.File, for sendfile
	}
	if err != nil {
		s.closePendingData()
		s.replyFileError("RETR", virtual, err)
		return
	}
	defer f.Close()
	started := time.Now()
	osf, _ := f.(*os.File) // local homes: the file offset tells the progress
	if osf != nil {
		defer s.trackTransfer("RETR", virtual, osf, offset)() // before f.Close
	} else {
		var moved atomic.Int64
		f = readCloser{countingReader{f, &moved}, f}
		defer s.trackCounted("RETR", virtual, &moved)()
	}
	var n int64
	ascii := s.asciiType
	err = s.withData(openingData, 0, func(c net.Conn) error {
		var cerr error
		if ascii {
			n, cerr = io.Copy(c, newToNetASCII(f))
			return cerr
		}
		if osf == nil { // a stream from object storage: large copies, fewer syscalls
			n, cerr = io.CopyBuffer(struct{ io.Writer }{c}, struct{ io.Reader }{f}, make([]byte, remoteCopyBuffer))
			return cerr
		}
		// *os.File (local homes) to *net.TCPConn: io.Copy reaches sendfile(2).
		n, cerr = io.Copy(c, f)
		return cerr
	})
	if transferStarted(err) {
		s.transferEvent(djangoclient.EventFileSent, djangoclient.EventIncompleteFileSent, virtual, n, started, err)
	}
	s.finishTransfer("RETR", virtual, n, started, err)
}

func (s *session) handleSTOR(param string) { s.receiveUpload("STOR", param, openingData, writeReplace) }
func (s *session) handleAPPE(param string) { s.receiveUpload("APPE", param, openingData, writeAppend) }

// receiveUpload answers STOR, STOU and APPE: checks first, then the data connection,
// then the upload value does the writing (upload.go). Nothing on disk changes before
// the data connection is up and 150 sent: a refused command leaves every file as it
// was. A quota counts the bytes the upload adds, reserved as they arrive (quota.go).
func (s *session) receiveUpload(cmd, param, prelim string, mode writeMode) {
	up, err := s.newUpload(param, mode)
	if err == nil {
		err = s.guardUpload(up)
	}
	if err != nil {
		s.closePendingData()
		if errors.Is(err, errQuotaUsedUp) {
			s.log.Info("upload refused: quota used up", "cmd", cmd, "path", up.virtual)
		}
		s.replyFileError(cmd, up.virtual, err)
		return
	}
	started := time.Now()
	err = s.withData(prelim, uploadSettle, func(c net.Conn) error {
		if err := up.Open(); err != nil {
			return fmt.Errorf("%w: %w", errFileOpen, err)
		}
		if up.remote != nil {
			defer s.trackCounted(cmd, up.virtual, &up.moved)()
		} else {
			defer s.trackTransfer(cmd, up.virtual, up.f, up.kept)()
		}
		var src io.Reader = c
		if up.ascii {
			src = newFromNetASCII(c)
		}
		_, err := up.ReadFrom(src)
		return err
	})
	if err == nil {
		err = up.Commit()
	} else {
		err = up.Abort(err)
	}
	if transferStarted(err) {
		s.transferEvent(djangoclient.EventFileReceived, djangoclient.EventIncompleteFileReceived, up.virtual, up.n, started, err)
	}
	s.finishTransfer(cmd, up.virtual, up.n, started, err)
}

// newUpload checks an upload before any reply: it only reads the file system.
func (s *session) newUpload(param string, mode writeMode) (*upload, error) {
	up := &upload{root: s.localRoot(), fs: s.fs, ctx: s.ctx(), offset: s.restOffset, appendMode: mode == writeAppend, ascii: s.asciiType}
	s.restOffset = 0
	if up.appendMode && up.offset > 0 {
		// RFC 3659 5.3: after REST, APPE writes at the marker, as STOR does; that
		// overwrites, so it needs the letter STOR needs.
		if !s.grant.Can('w') {
			return up, fmt.Errorf("REST before APPE needs w: %w", errNoLetter)
		}
		up.appendMode = false
	}
	var err error
	up.virtual, up.rel, err = s.resolve(param)
	if err == nil && up.rel == "." {
		err = errIsDir
	}
	if err == nil {
		err = up.check(s.srv.cfg.AtomicUploads)
	}
	if err == nil {
		err = s.checkRestart(up.offset, up.oldSize)
	}
	return up, err
}

// guardUpload attaches the quota guard, or the plain usage record, to an upload.
func (s *session) guardUpload(up *upload) error {
	q, err := s.user.GuardQuota(up.oldSize - up.kept)
	if err != nil {
		return err
	}
	up.quota = q
	if q == nil {
		up.settleUsage = s.user.AddUsage
	}
	return nil
}

// checkRestart refuses a REST marker past the end of the file (RFC 1123 4.1.3.4,
// RFC 3659 5.3) and any marker in TYPE A.
func (s *session) checkRestart(offset, size int64) error {
	switch {
	case offset > 0 && s.asciiType:
		return fmt.Errorf("REST %d in TYPE A: %w", offset, errInvalidRest)
	case offset > size:
		return fmt.Errorf("REST %d beyond size %d: %w", offset, size, errInvalidRest)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// readCloser is a Reader with another's Close.
type readCloser struct {
	io.Reader
	io.Closer
}
