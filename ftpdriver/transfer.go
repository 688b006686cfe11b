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
	"github.com/djftpd/djftpd/storage"
)

// uploadTempPrefix names the hidden temporary files of atomic uploads; listings skip
// them.
const uploadTempPrefix = storage.UploadTempPrefix

// openingData is the usual 150 text.
const openingData = "Opening data connection"

// errLocal is a failure on our side of a transfer (disk, file system), as opposed to
// the data connection.
var errLocal = errors.New("local error in processing")

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
	switch {
	case err == nil:
		s.log.Info("transfer complete", attrs...)
		s.reply(226, fmt.Sprintf("Transfer complete, %d bytes", n))
	case errors.Is(err, errNoDataChannel):
		s.reply(425, "Use PASV, EPSV, PORT or EPRT first")
	case errors.Is(err, errTLSRequired):
		s.reply(521, "Data connections must be protected: send PBSZ 0 and PROT P")
	case errors.Is(err, errTLSNotResumed):
		s.log.Warn("protected data connection refused: it did not resume the control connection's TLS session "+
			"(the client must reuse the control session on data connections, see README \"TLS\")", attrs...)
		s.reply(522, "Data connection must resume the control connection's TLS session")
	case errors.Is(err, errDataOpen):
		s.log.Warn("data connection failed", append(attrs, "err", err)...)
		s.reply(425, "Cannot open data connection")
	case errors.Is(err, errAborted):
		s.log.Info("transfer aborted by client", attrs...)
		s.reply(426, "Transfer aborted")
		s.reply(226, "ABOR successful")
	case errors.Is(err, errPeerGone):
		s.log.Info("client went away during transfer", attrs...)
	case errors.Is(err, errFileOpen):
		s.fail(cmd, virtual, err)
	case errors.Is(err, errQuotaExceeded):
		s.log.Info("upload over quota", attrs...)
		s.reply(552, "Quota exceeded, upload discarded")
	case errors.Is(err, storage.ErrUnavailable):
		s.log.Error("storage failed during transfer", append(attrs, "err", err)...)
		s.reply(451, "Storage unavailable, transfer aborted")
	case errors.Is(err, errLocal):
		s.log.Error("transfer failed", append(attrs, "err", err)...)
		s.reply(451, "Local error, transfer aborted")
	default:
		s.log.Info("transfer aborted", append(attrs, "err", err)...)
		s.reply(426, "Connection closed, transfer aborted")
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
		s.fail(cmd, virtual, err)
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
		s.fail("RETR", virtual, err)
		return
	}
	defer f.Close()
	started := time.Now()
	osf, _ := f.(*os.File)                                // progress of live sessions: local homes only
	defer s.trackTransfer("RETR", virtual, osf, offset)() // before f.Close
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
		if errors.Is(err, errQuotaExceeded) {
			s.log.Info("upload refused: quota used up", "cmd", cmd, "path", up.virtual)
			s.reply(552, "Quota exceeded")
			return
		}
		s.fail(cmd, up.virtual, err)
		return
	}
	started := time.Now()
	err = s.withData(prelim, uploadSettle, func(c net.Conn) error {
		if err := s.openUpload(up); err != nil {
			return fmt.Errorf("%w: %w", errFileOpen, err)
		}
		defer s.trackTransfer(cmd, up.virtual, up.f, up.kept)()
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

// errFileOpen wraps a failure to open the upload's file once the data connection was
// up: answered like any refused file operation (550, 553).
var errFileOpen = errors.New("open upload file")

// upload is one STOR, STOU or APPE: where it writes and what it may change.
type upload struct {
	virtual, rel string
	offset       int64 // REST marker; 0 without
	appendMode   bool
	ascii        bool           // TYPE A: CRLF on the wire becomes LF on disk
	atomic       bool           // a temporary file renamed into place on success
	existed      bool           // the target was there before
	oldSize      int64          // its size then
	oldMtime     time.Time      // its modification time then
	kept         int64          // old bytes that stay: all for APPE, those before the REST marker, none for STOR
	tmp          string         // the temporary file of an atomic upload
	f            *os.File       // nil until opened inside the data connection (local homes)
	remote       storage.Upload // the upload of a home in object storage, else nil
	n            int64          // bytes received
}

// newUpload checks an upload before any reply: it only reads the file system.
func (s *session) newUpload(param string, appendMode bool) (*upload, error) {
	up := &upload{offset: s.restOffset, appendMode: appendMode, ascii: s.asciiType}
	s.restOffset = 0
	if appendMode && up.offset > 0 {
		// RFC 3659 5.3: after REST, APPE writes at the marker, as STOR does; that
		// overwrites, so it needs the letter STOR needs.
		if !s.grant.Can('w') {
			return up, fs.ErrPermission
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
	if err := s.canUpload(up); err != nil {
		return up, err
	}
	if dir, err := s.fs.Stat(s.ctx(), path.Dir(up.rel)); err != nil {
		return up, err
	} else if !dir.IsDir() {
		return up, errNotDir
	}
	fi, serr := s.fs.Lstat(s.ctx(), up.rel)
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
	up.atomic = s.srv.cfg.AtomicUploads && !up.appendMode && up.offset == 0 || s.localRoot() == nil
	switch {
	case up.appendMode:
		up.kept = up.oldSize
	case up.offset > 0:
		up.kept = up.offset
	}
	return up, nil
}

// canUpload refuses what the home's storage cannot do: appending, writing from a
// REST marker (object storage writes whole objects).
func (s *session) canUpload(up *upload) error {
	c := s.fs.Capabilities()
	switch {
	case up.appendMode && !c.Append:
		return fmt.Errorf("append: %w", storage.ErrUnsupported)
	case up.offset > 0 && !c.Resume:
		return fmt.Errorf("resume at an offset: %w", storage.ErrUnsupported)
	}
	return nil
}

// openUpload opens the file an upload writes, once the data connection is up. In
// place, the file is not truncated here: old bytes go only as new ones replace them.
// A home in object storage gets a streamed upload, visible only once committed.
func (s *session) openUpload(up *upload) error {
	root := s.localRoot()
	if root == nil {
		var err error
		up.remote, err = s.fs.Create(s.ctx(), up.rel, storage.CreateOptions{Atomic: true})
		return err
	}
	var err error
	switch {
	case up.appendMode:
		up.f, err = root.OpenFile(up.rel, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	case up.atomic:
		tmp := path.Join(path.Dir(up.rel), uploadTempPrefix+randomHex(8)+".part")
		if up.f, err = root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640); err == nil {
			up.tmp = tmp
		}
	case up.offset > 0:
		if up.f, err = root.OpenFile(up.rel, os.O_WRONLY, 0); err == nil {
			if _, err = up.f.Seek(up.offset, io.SeekStart); err != nil {
				up.f.Close()
				up.f = nil
			}
		}
	default:
		up.f, err = root.OpenFile(up.rel, os.O_WRONLY|os.O_CREATE, 0o640)
	}
	return err
}

// receive copies the data connection (or, in TYPE A, its conversion) into the
// upload's file. (*os.File).ReadFrom on the *net.TCPConn, or an io.LimitedReader of
// it, reaches splice(2). Not io.Copy: it would ask the TCPConn to WriteTo the file
// first, which falls back to a 32 KiB read loop.
func (up *upload) receive(c io.Reader, q *quotaGuard) error {
	var dst io.ReaderFrom = up.f
	if up.remote != nil {
		dst = writerReaderFrom{up.remote}
	}
	if q == nil {
		var err error
		up.n, err = dst.ReadFrom(c)
		return err
	}
	for {
		if q.free == 0 && q.reserve() == 0 {
			return endOfData(c)
		}
		lr := &io.LimitedReader{R: c, N: q.free}
		n, err := dst.ReadFrom(lr)
		up.n += n
		q.free -= n
		if err != nil || lr.N > 0 { // an error, or the end of the data before the limit
			return err
		}
	}
}

// writerReaderFrom reads into an upload of object storage through a plain copy
// buffer (no splice: the bytes go to the network again).
type writerReaderFrom struct{ w io.Writer }

func (w writerReaderFrom) ReadFrom(r io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{w.w}, struct{ io.Reader }{r}, make([]byte, remoteCopyBuffer))
}

// remoteCopyBuffer is the copy buffer of a transfer to or from object storage.
const remoteCopyBuffer = 256 << 10

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
	if up.remote != nil {
		size, err = settleRemote(up, err)
	}
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

// settleRemote commits a complete upload to object storage, else aborts it: nothing
// is visible of an upload that failed, and no multipart upload stays pending.
func settleRemote(up *upload, err error) (int64, error) {
	if err == nil {
		if err = up.remote.Commit(); err == nil {
			return up.n, nil
		}
		return up.oldSize, fmt.Errorf("commit upload: %w", err)
	}
	_ = up.remote.Abort()
	return up.oldSize, err
}

// commitTemp renames a complete atomic upload into place, else removes it.
func (s *session) commitTemp(up *upload, err error) (int64, error) {
	if cerr := up.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: close: %w", errLocal, cerr)
	}
	if err == nil {
		if rerr := s.localRoot().Rename(up.tmp, up.rel); rerr != nil {
			err = fmt.Errorf("%w: commit upload: %w", errLocal, rerr)
		}
	}
	if err != nil {
		_ = s.localRoot().Remove(up.tmp)
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
		_ = s.localRoot().Remove(up.rel)
		size = 0
	case overQuota && up.appendMode:
		_ = s.localRoot().Chtimes(up.rel, time.Time{}, up.oldMtime)
	}
	return size, err
}

// errInvalidRest is a REST marker the next transfer cannot use: past the end of the
// file, or any marker in TYPE A, whose byte counts differ on the wire and on disk.
var errInvalidRest = errors.New("invalid REST parameter")

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
