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
	"path"
	"strings"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
)

// uploadTempPrefix names the hidden temporary files of atomic uploads; listings skip
// them.
const uploadTempPrefix = ".djftpd-upload-"

// openingData is the usual 150 text.
const openingData = "Opening data connection"

// finishTransfer sends the final reply of a transfer command and logs it.
func (s *session) finishTransfer(cmd, virtual string, n int64, started time.Time, err error) {
	if transferStarted(err) {
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

// transferStarted tells a transfer that began (and so is reported, complete or not)
// from one refused before any data was moved.
func transferStarted(err error) bool {
	return !errors.Is(err, errNoDataChannel) && !errors.Is(err, errTLSRequired) && !errors.Is(err, errFileOpen)
}

// readDir lists a directory, or the entry itself for a file, without upload temps.
func (s *session) readDir(rel string) ([]fs.FileInfo, error) {
	fi, err := s.root.Stat(rel)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return []fs.FileInfo{fi}, nil
	}
	f, err := s.root.Open(rel)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	entries, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	infos := make([]fs.FileInfo, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), uploadTempPrefix) {
			continue
		}
		if info, err := e.Info(); err == nil {
			infos = append(infos, info)
		}
	}
	return infos, nil
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
	var infos []fs.FileInfo
	if err == nil {
		infos, err = s.readDir(rel)
	}
	if err != nil {
		s.closePendingData()
		s.fail(cmd, virtual, err)
		return
	}
	started := time.Now()
	var n int64
	err = s.withData(openingData, 0, func(c net.Conn) error {
		w := bufio.NewWriter(c)
		now := time.Now()
		for _, fi := range infos {
			if long {
				_, _ = w.WriteString(listLine(fi, now))
			} else {
				_, _ = w.WriteString(fi.Name() + "\r\n")
			}
		}
		n = int64(w.Buffered())
		return w.Flush()
	})
	s.finishTransfer(cmd, virtual, n, started, err)
}

func (s *session) handleRETR(param string) {
	offset := s.restOffset
	s.restOffset = 0
	virtual, rel, err := s.resolve(param)
	var f *os.File
	if err == nil {
		f, err = s.root.Open(rel)
	}
	if err == nil {
		var fi fs.FileInfo
		if fi, err = f.Stat(); err == nil && !fi.Mode().IsRegular() {
			err = errIsDir
		}
		if err == nil {
			err = s.checkRestart(offset, fi.Size())
		}
		if err == nil && offset > 0 {
			_, err = f.Seek(offset, io.SeekStart)
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		s.closePendingData()
		s.fail("RETR", virtual, err)
		return
	}
	defer f.Close()
	started := time.Now()
	var n int64
	ascii := s.asciiType
	err = s.withData(openingData, 0, func(c net.Conn) error {
		var cerr error
		if ascii {
			n, cerr = io.Copy(c, newToNetASCII(f))
			return cerr
		}
		// *os.File to *net.TCPConn: io.Copy reaches sendfile(2).
		n, cerr = io.Copy(c, f)
		return cerr
	})
	if transferStarted(err) {
		s.transferEvent(djangoclient.EventFileSent, djangoclient.EventIncompleteFileSent, virtual, n, started, err)
	}
	s.finishTransfer("RETR", virtual, n, started, err)
}

func (s *session) handleSTOR(param string) { s.store("STOR", param, openingData, false) }
func (s *session) handleAPPE(param string) { s.store("APPE", param, openingData, true) }

// store receives a file. A plain STOR in atomic mode writes a hidden temporary file
// beside the target and renames it into place only when the whole file arrived; APPE
// and REST+STOR write in place (DESIGN.md §4). Nothing on disk changes before the data
// connection is up and 150 sent: a refused command leaves every file as it was.
// A quota counts the bytes the upload adds, reserved as they arrive (quota.go).
func (s *session) store(cmd, param, prelim string, appendMode bool) {
	up, err := s.newUpload(param, appendMode)
	var q *quotaGuard
	if err == nil {
		q, err = s.guardQuota(up.oldSize - up.kept)
	}
	if err != nil {
		s.closePendingData()
		if errors.Is(err, errQuotaUsedUp) {
			s.log.Info("upload refused: quota used up", "cmd", cmd, "path", up.virtual)
		}
		s.fail(cmd, up.virtual, err)
		return
	}
	started := time.Now()
	err = s.withData(prelim, uploadSettle, func(c net.Conn) error {
		if err := s.openUpload(up); err != nil {
			return fmt.Errorf("%w: %w", errFileOpen, err)
		}
		var src io.Reader = c
		if up.ascii {
			src = newFromNetASCII(c)
		}
		return up.receive(src, q)
	})
	err = s.endUpload(up, q, err)
	if transferStarted(err) {
		s.transferEvent(djangoclient.EventFileReceived, djangoclient.EventIncompleteFileReceived, up.virtual, up.n, started, err)
	}
	s.finishTransfer(cmd, up.virtual, up.n, started, err)
}

// upload is one STOR, STOU or APPE: where it writes and what it may change.
type upload struct {
	virtual, rel string
	offset       int64 // REST marker; 0 without
	appendMode   bool
	ascii        bool      // TYPE A: CRLF on the wire becomes LF on disk
	atomic       bool      // a temporary file renamed into place on success
	existed      bool      // the target was there before
	oldSize      int64     // its size then
	oldMtime     time.Time // its modification time then
	kept         int64     // old bytes that stay: all for APPE, those before the REST marker, none for STOR
	tmp          string    // the temporary file of an atomic upload
	f            *os.File  // nil until opened inside the data connection
	n            int64     // bytes received
}

// newUpload checks an upload before any reply: it only reads the file system.
func (s *session) newUpload(param string, appendMode bool) (*upload, error) {
	up := &upload{offset: s.restOffset, appendMode: appendMode, ascii: s.asciiType}
	s.restOffset = 0
	if appendMode && up.offset > 0 {
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
	if err != nil {
		return up, err
	}
	// What can be refused is refused here, before 150: after it, RFC 959 allows
	// only transfer failures.
	if dir, err := s.root.Stat(path.Dir(up.rel)); err != nil {
		return up, err
	} else if !dir.IsDir() {
		return up, errNotDir
	}
	fi, serr := s.root.Lstat(up.rel)
	switch {
	case serr == nil && fi.IsDir():
		return up, errIsDir
	case serr == nil:
		up.existed, up.oldSize, up.oldMtime = true, fi.Size(), fi.ModTime()
	case up.offset > 0 || !errors.Is(serr, fs.ErrNotExist):
		return up, serr // a resumed upload needs the file
	}
	if err := s.checkRestart(up.offset, up.oldSize); err != nil {
		return up, err
	}
	up.atomic = s.srv.cfg.AtomicUploads && !up.appendMode && up.offset == 0
	switch {
	case up.appendMode:
		up.kept = up.oldSize
	case up.offset > 0:
		up.kept = up.offset
	}
	return up, nil
}

// openUpload opens the file an upload writes, once the data connection is up. In
// place, the file is not truncated here: old bytes go only as new ones replace them.
func (s *session) openUpload(up *upload) error {
	var err error
	switch {
	case up.appendMode:
		up.f, err = s.root.OpenFile(up.rel, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	case up.atomic:
		tmp := path.Join(path.Dir(up.rel), uploadTempPrefix+randomHex(8)+".part")
		if up.f, err = s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640); err == nil {
			up.tmp = tmp
		}
	case up.offset > 0:
		if up.f, err = s.root.OpenFile(up.rel, os.O_WRONLY, 0); err == nil {
			if _, err = up.f.Seek(up.offset, io.SeekStart); err != nil {
				up.f.Close()
				up.f = nil
			}
		}
	default:
		up.f, err = s.root.OpenFile(up.rel, os.O_WRONLY|os.O_CREATE, 0o640)
	}
	return err
}

// receive copies the data connection (or, in TYPE A, its conversion) into the
// upload's file. (*os.File).ReadFrom on the *net.TCPConn, or an io.LimitedReader of
// it, reaches splice(2). Not io.Copy: it would ask the TCPConn to WriteTo the file
// first, which falls back to a 32 KiB read loop.
func (up *upload) receive(c io.Reader, q *quotaGuard) error {
	if q == nil {
		var err error
		up.n, err = up.f.ReadFrom(c)
		return err
	}
	for {
		if q.free == 0 && q.reserve() == 0 {
			return endOfData(c)
		}
		lr := &io.LimitedReader{R: c, N: q.free}
		n, err := up.f.ReadFrom(lr)
		up.n += n
		q.free -= n
		if err != nil || lr.N > 0 { // an error, or the end of the data before the limit
			return err
		}
	}
}

// endOfData is nil when the client has no byte more to send, errQuotaExceeded if it has.
func endOfData(c io.Reader) error {
	var b [1]byte
	switch _, err := io.ReadFull(c, b[:]); {
	case err == nil:
		return errQuotaExceeded
	case errors.Is(err, io.EOF):
		return nil
	default:
		return err
	}
}

// endUpload closes the upload's file and settles what stays on disk and in the
// usage record: bytes actually written count, whatever the outcome.
func (s *session) endUpload(up *upload, q *quotaGuard, err error) error {
	size := up.oldSize // the target's size afterwards
	if up.f != nil {
		if up.atomic {
			size, err = s.commitTemp(up, err)
		} else {
			size, err = s.settleInPlace(up, err)
		}
	}
	delta := size - up.oldSize
	if q != nil {
		q.release(delta)
	} else {
		s.addUsage(delta)
	}
	return err
}

// commitTemp renames a complete atomic upload into place, else removes it.
func (s *session) commitTemp(up *upload, err error) (int64, error) {
	if cerr := up.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: close: %w", errLocal, cerr)
	}
	if err == nil {
		if rerr := s.root.Rename(up.tmp, up.rel); rerr != nil {
			err = fmt.Errorf("%w: commit upload: %w", errLocal, rerr)
		}
	}
	if err != nil {
		_ = s.root.Remove(up.tmp)
		return up.oldSize, err
	}
	return up.n, nil
}

// settleInPlace ends an in-place upload. The file ends where the new bytes end. One
// that failed before any byte arrived leaves the file as it was (a file it created is
// removed); one over quota keeps nothing of the upload: appended bytes are cut off and
// the mtime put back. (A broken connection keeps what arrived: that is what a client
// resumes with REST or APPE.)
func (s *session) settleInPlace(up *upload, err error) (int64, error) {
	overQuota := errors.Is(err, errQuotaExceeded)
	remove := !up.existed && (overQuota || (err != nil && up.n == 0))
	var terr error
	switch {
	case remove:
	case overQuota:
		terr = up.f.Truncate(up.kept)
		remove = up.kept == 0 && !up.appendMode && up.offset == 0
	case err != nil && up.n == 0:
	case !up.appendMode:
		terr = up.f.Truncate(up.offset + up.n)
	}
	size := up.oldSize
	if fi, serr := up.f.Stat(); serr == nil {
		size = fi.Size()
	}
	if cerr := up.f.Close(); terr == nil {
		terr = cerr
	}
	if err == nil && terr != nil {
		err = fmt.Errorf("%w: %w", errLocal, terr)
	}
	switch {
	case remove:
		_ = s.root.Remove(up.rel)
		size = 0
	case overQuota && up.appendMode:
		_ = s.root.Chtimes(up.rel, time.Time{}, up.oldMtime)
	}
	return size, err
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
