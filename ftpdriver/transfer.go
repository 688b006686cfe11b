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
	case errors.Is(err, errDataOpen):
		s.log.Warn("data connection failed", append(attrs, "err", err)...)
		s.reply(425, "Cannot open data connection")
	case errors.Is(err, errAborted):
		s.log.Info("transfer aborted by client", attrs...)
		s.reply(426, "Transfer aborted")
		s.reply(226, "ABOR successful")
	case errors.Is(err, errPeerGone):
		s.log.Info("client went away during transfer", attrs...)
	case errors.Is(err, errQuotaExceeded):
		s.log.Info("upload over quota", attrs...)
		s.reply(552, "Quota exceeded, upload discarded")
	case errors.Is(err, errLocal):
		s.log.Error("transfer failed", append(attrs, "err", err)...)
		s.reply(451, "Local error, transfer aborted")
	default:
		s.log.Info("transfer aborted", append(attrs, "err", err)...)
		s.reply(426, "Connection closed, transfer aborted")
	}
}

// transferStarted tells a transfer that began (and so is reported, complete or not)
// from one refused before any data channel was used.
func transferStarted(err error) bool {
	return !errors.Is(err, errNoDataChannel) && !errors.Is(err, errTLSRequired)
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
	defer s.trackTransfer("RETR", virtual, f, offset)() // before f.Close
	var n int64
	err = s.withData(openingData, 0, func(c net.Conn) error {
		// *os.File to *net.TCPConn: io.Copy reaches sendfile(2).
		var cerr error
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
// and REST+STOR write in place (DESIGN.md §4).
// A quota counts the bytes the upload adds: an upload that would exceed it stops with
// 552 and leaves the target as it was (in place: truncated back).
func (s *session) store(cmd, param, prelim string, appendMode bool) {
	offset := s.restOffset
	s.restOffset = 0
	virtual, rel, err := s.resolve(param)
	if err == nil && rel == "." {
		err = errIsDir
	}
	var oldSize int64 // size of the file the upload replaces or extends
	if err == nil {
		if fi, serr := s.root.Lstat(rel); serr == nil {
			if fi.IsDir() {
				err = errIsDir
			}
			oldSize = fi.Size()
		}
	}
	var left int64 = -1
	if err == nil {
		left, err = s.quotaLeft()
	}
	var f *os.File
	tmp := ""
	if err == nil {
		switch {
		case appendMode:
			f, err = s.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
		case offset > 0:
			f, err = s.openAt(rel, offset)
		case s.srv.cfg.AtomicUploads:
			tmp = path.Join(path.Dir(rel), uploadTempPrefix+randomHex(8)+".part")
			f, err = s.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		default:
			f, err = s.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
		}
	}
	if err != nil {
		s.closePendingData()
		s.fail(cmd, virtual, err)
		return
	}
	// kept is what stays of the old file: all of it for APPE, the part before the
	// offset for REST, nothing for a replacing STOR, whose old bytes are freed.
	kept := oldSize
	switch {
	case appendMode:
	case offset > 0:
		kept = offset
	default:
		kept = 0
	}
	started := time.Now()
	untrack := s.trackTransfer(cmd, virtual, f, kept)
	var n int64
	err = s.withData(prelim, uploadSettle, func(c net.Conn) error {
		// (*os.File).ReadFrom on the *net.TCPConn, or an io.LimitedReader of it, reaches
		// splice(2). Not io.Copy: it would ask the TCPConn to WriteTo the file first,
		// which falls back to a 32 KiB read loop (TestTransfersAreZeroCopy).
		if left < 0 {
			var cerr error
			n, cerr = f.ReadFrom(c)
			return cerr
		}
		allowed := left + oldSize - kept
		var cerr error
		n, cerr = f.ReadFrom(&io.LimitedReader{R: c, N: allowed + 1})
		if cerr == nil && n > allowed {
			return errQuotaExceeded
		}
		return cerr
	})
	untrack()
	if errors.Is(err, errQuotaExceeded) && tmp == "" {
		// In place, nothing of an upload over quota stays. (A broken connection keeps
		// what arrived: that is what a client resumes with REST or APPE.)
		_ = f.Truncate(kept)
		if kept == 0 && !appendMode && offset == 0 {
			_ = s.root.Remove(rel)
		}
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%w: close: %w", errLocal, cerr)
	}
	if tmp != "" {
		if err == nil {
			if rerr := s.root.Rename(tmp, rel); rerr != nil {
				err = fmt.Errorf("%w: commit upload: %w", errLocal, rerr)
			}
		}
		if err != nil {
			_ = s.root.Remove(tmp)
		}
	}
	if err == nil {
		s.addUsage(kept + n - oldSize)
	}
	if transferStarted(err) {
		s.transferEvent(djangoclient.EventFileReceived, djangoclient.EventIncompleteFileReceived, virtual, n, started, err)
	}
	s.finishTransfer(cmd, virtual, n, started, err)
}

// openAt opens rel for a resumed upload: the part after offset is replaced.
func (s *session) openAt(rel string, offset int64) (*os.File, error) {
	f, err := s.root.OpenFile(rel, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && offset > fi.Size() {
		err = fmt.Errorf("REST offset %d beyond size %d: %w", offset, fi.Size(), fs.ErrInvalid)
	}
	if err == nil {
		err = f.Truncate(offset)
	}
	if err == nil {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
