package ftpdriver

import (
	"errors"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/storage"
)

// replyFileError answers a failed file operation (replyFor) and logs why.
func (s *session) replyFileError(cmd, virtual string, err error) {
	code, text := replyFor(err)
	switch {
	case errors.Is(err, storage.ErrUnsupported):
		text = cmd + " not supported on object storage: " + unsupportedWhy[cmd]
	case errors.Is(err, storage.ErrUnavailable):
		s.log.Error("storage failed", "cmd", cmd, "path", virtual, "err", err)
		s.reply(code, text)
		return
	}
	s.log.Debug("file operation refused", "cmd", cmd, "path", virtual, "err", err)
	s.reply(code, text)
}

// unsupportedWhy says why object storage refuses a command (README "Homes in S3").
var unsupportedWhy = map[string]string{
	"APPE":       "an object cannot be appended to",
	"STOR":       "an object is written whole, an upload cannot resume at a REST offset",
	"SITE CHMOD": "objects have no permission bits",
	"MFMT":       "an object's time is when it was written",
}

// quote formats a path for a 257 reply: in quotes, embedded quotes doubled (RFC 959).
func quote(p string) string {
	return `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
}

func (s *session) handlePWD(string) {
	s.reply(257, quote(s.cwd)+" is the current directory")
}

func (s *session) handleCWD(param string) {
	virtual, rel, err := s.resolve(param)
	if err == nil {
		var fi fs.FileInfo
		if fi, err = s.fs.Stat(s.ctx(), rel); err == nil && !fi.IsDir() {
			err = errNotDir
		}
	}
	if err != nil {
		s.replyFileError("CWD", virtual, err)
		return
	}
	s.cwd = virtual
	s.reply(250, "Directory changed to "+virtual)
}

func (s *session) handleCDUP(string) { s.handleCWD("..") }

func (s *session) handleMKD(param string) {
	virtual, rel, err := s.resolve(param)
	if err == nil {
		err = s.fs.Mkdir(s.ctx(), rel)
	}
	if err != nil {
		s.replyFileError("MKD", virtual, err)
		return
	}
	s.log.Info("directory created", "path", virtual)
	s.emit(djangoclient.Event{Type: djangoclient.EventDirectoryCreated, Path: &virtual})
	s.reply(257, quote(virtual)+" created")
}

func (s *session) handleRMD(param string) {
	virtual, rel, err := s.resolve(param)
	if err == nil && rel == "." {
		err = errIsHome
	}
	if err == nil {
		err = s.fs.Rmdir(s.ctx(), rel)
	}
	if err != nil {
		s.replyFileError("RMD", virtual, err)
		return
	}
	s.log.Info("directory deleted", "path", virtual)
	s.emit(djangoclient.Event{Type: djangoclient.EventDirectoryDeleted, Path: &virtual})
	s.reply(250, "Directory removed")
}

func (s *session) handleDELE(param string) {
	virtual, rel, err := s.resolve(param)
	var fi fs.FileInfo
	if err == nil {
		if fi, err = s.fs.Lstat(s.ctx(), rel); err == nil && fi.IsDir() {
			err = errIsDir
		}
	}
	if err == nil {
		err = s.fs.Remove(s.ctx(), rel)
	}
	if err != nil {
		s.replyFileError("DELE", virtual, err)
		return
	}
	if fi.Mode().IsRegular() {
		s.user.AddUsage(-fi.Size())
	}
	s.log.Info("file deleted", "path", virtual)
	s.emit(djangoclient.Event{Type: djangoclient.EventFileDeleted, Path: &virtual})
	s.reply(250, "File deleted")
}

func (s *session) handleRNFR(param string) {
	virtual, rel, err := s.resolve(param)
	if err == nil && rel == "." {
		err = errIsHome
	}
	if err == nil {
		_, err = s.fs.Lstat(s.ctx(), rel)
	}
	if err != nil {
		s.replyFileError("RNFR", virtual, err)
		return
	}
	s.renameFrom = virtual
	s.reply(350, "Ready for RNTO")
}

func (s *session) handleRNTO(param string) {
	from := s.renameFrom
	s.renameFrom = ""
	if from == "" {
		s.reply(503, "Send RNFR first")
		return
	}
	_, fromRel, _ := s.resolve(from)
	virtual, rel, err := s.resolve(param)
	if err == nil && rel == "." {
		err = errIsHome
	}
	if err == nil {
		err = s.fs.Rename(s.ctx(), fromRel, rel)
	}
	if err != nil {
		s.replyFileError("RNTO", virtual, err)
		return
	}
	s.log.Info("file renamed", "path", from, "to_path", virtual)
	s.emit(djangoclient.Event{Type: djangoclient.EventFileRenamed, Path: &from, ToPath: &virtual})
	s.reply(250, "Rename successful")
}

// asciiSizeLimit bounds the file SIZE reads through in TYPE A to count its line ends.
const asciiSizeLimit = 16 << 20

// handleSIZE answers the octets a RETR would send (RFC 3659 4): in TYPE A the size after
// line-end conversion, counted by reading the file, up to asciiSizeLimit; above it 550.
func (s *session) handleSIZE(param string) {
	virtual, rel, err := s.resolve(param)
	var fi fs.FileInfo
	if err == nil {
		if fi, err = s.fs.Stat(s.ctx(), rel); err == nil && !fi.Mode().IsRegular() {
			err = errIsDir
		}
	}
	if err != nil {
		s.replyFileError("SIZE", virtual, err)
		return
	}
	if s.asciiType {
		s.sizeASCII(virtual, rel, fi.Size())
		return
	}
	s.reply(213, strconv.FormatInt(fi.Size(), 10))
}

// sizeASCII answers SIZE in TYPE A: the file's size with every bare LF counted twice.
func (s *session) sizeASCII(virtual, rel string, size int64) {
	if size > asciiSizeLimit {
		s.reply(550, "SIZE not allowed in ASCII mode for files over 16 MiB; send TYPE I")
		return
	}
	f, err := s.fs.Open(s.ctx(), rel, 0)
	var n int64
	if err == nil {
		n, err = io.Copy(io.Discard, newToNetASCII(io.LimitReader(f, asciiSizeLimit)))
		f.Close()
	}
	if err != nil {
		s.replyFileError("SIZE", virtual, err)
		return
	}
	s.reply(213, strconv.FormatInt(n, 10))
}

func (s *session) handleMDTM(param string) {
	virtual, rel, err := s.resolve(param)
	var fi fs.FileInfo
	if err == nil {
		fi, err = s.fs.Stat(s.ctx(), rel)
	}
	if err != nil {
		s.replyFileError("MDTM", virtual, err)
		return
	}
	s.reply(213, fi.ModTime().UTC().Format("20060102150405"))
}

func (s *session) handleREST(param string) {
	n, err := strconv.ParseInt(strings.TrimSpace(param), 10, 64)
	if err != nil || n < 0 {
		s.reply(501, "REST needs a non-negative byte offset")
		return
	}
	s.restOffset = n
	s.reply(350, "Restarting at "+strconv.FormatInt(n, 10)+". Send STOR or RETR")
}

// listLine formats one LIST entry the way ls -l does, which every FTP client parses.
// Owner and group are fixed: local user ids mean nothing to the FTP user.
func listLine(fi fs.FileInfo, now time.Time) string {
	var b strings.Builder
	switch m := fi.Mode(); {
	case m.IsDir():
		b.WriteByte('d')
	case m&fs.ModeSymlink != 0:
		b.WriteByte('l')
	default:
		b.WriteByte('-')
	}
	const rwx = "rwxrwxrwx"
	perm := fi.Mode().Perm()
	for i := 0; i < 9; i++ {
		if perm&(1<<uint(8-i)) != 0 {
			b.WriteByte(rwx[i])
		} else {
			b.WriteByte('-')
		}
	}
	mod := fi.ModTime().UTC()
	date := mod.Format("Jan _2 15:04")
	if now.Sub(mod) > 180*24*time.Hour || mod.After(now.Add(time.Hour)) {
		date = mod.Format("Jan _2  2006")
	}
	b.WriteString(" 1 ftp ftp ")
	size := strconv.FormatInt(fi.Size(), 10)
	if len(size) < 12 {
		b.WriteString(strings.Repeat(" ", 12-len(size)))
	}
	b.WriteString(size + " " + date + " " + fi.Name() + "\r\n")
	return b.String()
}
