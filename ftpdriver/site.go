package ftpdriver

import (
	"crypto/md5"  //nolint:gosec // HASH MD5 is a checksum clients ask for, not security
	"crypto/sha1" //nolint:gosec // likewise HASH SHA-1
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/djftpd/djftpd/storage"
)

// hashAlgorithms are the HASH algorithms (draft-bryan-ftpext-hash), in FEAT order.
var hashAlgorithms = []struct {
	name string
	new  func() hash.Hash
}{
	{"SHA-256", sha256.New},
	{"SHA-1", sha1.New},
	{"MD5", md5.New},
	{"CRC32", func() hash.Hash { return crc32.NewIEEE() }},
}

func (s *session) featHASH() string {
	names := make([]string, len(hashAlgorithms))
	for i, a := range hashAlgorithms {
		names[i] = a.name
		if a.name == s.hashAlgo() {
			names[i] += "*"
		}
	}
	return "HASH " + strings.Join(names, ";")
}

func (s *session) hashAlgo() string {
	if s.hashName == "" {
		return hashAlgorithms[0].name
	}
	return s.hashName
}

func (s *session) optsHASH(arg string) {
	arg = strings.ToUpper(strings.TrimSpace(arg))
	if arg == "" {
		s.reply(200, s.hashAlgo())
		return
	}
	for _, a := range hashAlgorithms {
		if a.name == arg {
			s.hashName = a.name
			s.reply(200, a.name)
			return
		}
	}
	s.reply(501, "Unknown algorithm, current selection not changed")
}

func (s *session) handleHASH(param string) {
	virtual, rel, err := s.resolve(param)
	var f io.ReadCloser
	var fi fs.FileInfo
	if err == nil {
		if fi, err = s.fs.Stat(s.ctx(), rel); err == nil && !fi.Mode().IsRegular() {
			err = errIsDir
		}
	}
	if err == nil {
		if f, err = s.fs.Open(s.ctx(), rel, 0); err == nil {
			defer f.Close()
		}
	}
	if err != nil {
		s.replyFileError("HASH", virtual, err)
		return
	}
	name := s.hashAlgo()
	var h hash.Hash
	for _, a := range hashAlgorithms {
		if a.name == name {
			h = a.new()
		}
	}
	n, err := io.Copy(h, f)
	if err != nil {
		s.log.Error("hash failed", "path", virtual, "err", err)
		if errors.Is(err, storage.ErrUnavailable) {
			s.reply(451, "Storage unavailable while hashing")
			return
		}
		s.reply(451, "Local error while hashing")
		return
	}
	s.reply(213, fmt.Sprintf("%s 0-%d %s %s", name, n, hex.EncodeToString(h.Sum(nil)), virtual))
}

// handleSITE runs SITE subcommands; the permission letter of each is checked by
// dispatch through commandPerms ("SITE CHMOD").
func (s *session) handleSITE(param string) {
	sub, arg, _ := strings.Cut(strings.TrimSpace(param), " ")
	switch strings.ToUpper(sub) {
	case "CHMOD":
		s.siteCHMOD(arg)
	case "HELP":
		s.siteHELP(arg)
	default:
		s.reply(504, "SITE "+sub+" not supported")
	}
}

// siteHELP answers SITE HELP [subcommand].
func (s *session) siteHELP(arg string) {
	switch strings.ToUpper(strings.TrimSpace(arg)) {
	case "":
		s.reply(214, "SITE commands recognized: CHMOD HELP")
	case "CHMOD":
		s.reply(214, "Syntax: SITE CHMOD <octal mode 0-777> <path>")
	case "HELP":
		s.reply(214, "Syntax: SITE HELP [<sp> subcommand]")
	default:
		s.reply(502, "Unknown SITE command "+strings.TrimSpace(arg))
	}
}

func (s *session) siteCHMOD(arg string) {
	modeText, target, ok := strings.Cut(strings.TrimSpace(arg), " ")
	mode, err := strconv.ParseUint(modeText, 8, 32)
	if !ok || err != nil || mode > 0o777 {
		s.reply(501, "Usage: SITE CHMOD <octal mode 0-777> <path>")
		return
	}
	virtual, rel, err := s.resolve(target)
	if err == nil {
		err = s.fs.Chmod(s.ctx(), rel, fs.FileMode(mode))
	}
	if err != nil {
		s.replyFileError("SITE CHMOD", virtual, err)
		return
	}
	s.reply(200, "SITE CHMOD command successful")
}

// handleMFMT sets a file's modification time (draft-somers-ftp-mfxx).
func (s *session) handleMFMT(param string) {
	stamp, target, ok := strings.Cut(strings.TrimSpace(param), " ")
	t, err := time.Parse("20060102150405", stamp)
	if !ok || err != nil {
		s.reply(501, "Usage: MFMT YYYYMMDDHHMMSS <path>")
		return
	}
	virtual, rel, err := s.resolve(target)
	if err == nil {
		err = s.fs.Chtimes(s.ctx(), rel, t)
	}
	if err != nil {
		s.replyFileError("MFMT", virtual, err)
		return
	}
	s.reply(213, "Modify="+stamp+"; "+virtual)
}

// handleAVBL reports the bytes the user may still store: what the quota leaves, or
// the free space of the file system.
func (s *session) handleAVBL(param string) {
	virtual, rel, err := s.resolve(param)
	var fi fs.FileInfo
	if err == nil {
		if fi, err = s.fs.Stat(s.ctx(), rel); err == nil && !fi.IsDir() {
			err = errNotDir
		}
	}
	if err != nil {
		s.replyFileError("AVBL", virtual, err)
		return
	}
	free, err := s.available()
	if errors.Is(err, errNoFreeSpaceFigure) {
		s.reply(550, "No free space figure: object storage has no fixed size and no quota is set")
		return
	}
	if err != nil {
		s.log.Error("available space", "err", err)
		s.reply(550, "Cannot determine available space")
		return
	}
	s.reply(213, strconv.FormatInt(free, 10))
}

func (s *session) handleSTOU(param string) {
	base := "stou"
	if p := strings.TrimSpace(param); p != "" && !strings.ContainsAny(p, "/") {
		base = p
	}
	name := fmt.Sprintf("%s.%s", base, randomHex(4))
	s.receiveUpload("STOU", name, "FILE: "+name, writeReplace)
}
