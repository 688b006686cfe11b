package ftpdriver

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"syscall"

	"github.com/djftpd/djftpd/access"
	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/internal/proxyproto"
	"github.com/djftpd/djftpd/storage"
)

// The package's sentinel errors, all here: a handler returns or wraps one of them (or
// an error from the file system or djangoclient) and replyFor answers it.
var (
	// Permission and path.
	errNoLetter = errors.New("permission letter missing from the grant")
	errBadPath  = errors.New("invalid path argument") // not UTF-8 or holds a NUL byte
	errIsDir    = storage.ErrIsDir
	errNotDir   = storage.ErrNotDir
	errIsHome   = errors.New("the home directory itself")
	errEscapes  = errors.New("path leaves the home") // os.Root refused: see rootEscape

	// Transfers.
	errInvalidRest   = errors.New("invalid REST parameter") // past the end, or any marker in TYPE A
	errFileOpen      = errors.New("open upload file")       // wraps the file error, after 150
	errLocal         = errors.New("local error in processing")
	errQuotaExceeded = access.ErrQuotaExceeded
	errQuotaUsedUp   = access.ErrQuotaUsedUp // refused before 150
	errNoDataChannel = errors.New("no PASV, EPSV, PORT or EPRT before the transfer")
	errTLSRequired   = errors.New("TLS required")
	// A TLS session not resumed from the control connection's may come from anyone who
	// reached the passive port first (vsftpd's require_ssl_reuse).
	errTLSNotResumed = errors.New("data connection did not resume the control connection's TLS session")
	errDataOpen      = errors.New("cannot open data connection")
	errAborted       = errors.New("transfer aborted by ABOR")
	errPeerGone      = errors.New("client closed the control connection during the transfer")
	errDataStalled   = errors.New("no data moved for the data timeout")
	errDataClosed    = errors.New("data connection failed during the transfer")

	// Data connection set-up.
	errBounce      = errors.New("active data connection target is not the control peer")
	errBadHostPort = errors.New("malformed host-port argument")
	errForeignData = errors.New("data connection from another address than the client's")
	errTooManyPasv = errors.New("too many passive listeners for this address")

	// Connections and logins.
	errBanned        = access.ErrBanned
	errTooManyConns  = access.ErrTooManyConnections
	errTooManyFromIP = access.ErrTooManyFromAddress
	errTooManyUser   = access.ErrTooManySessions
	errShuttingDown  = errors.New("server shutting down")
	errHomeUnusable  = access.ErrHomeUnusable // local disk, not Django
	errBadUsername   = access.ErrBadUsername
	errLineTooLong   = errors.New("control line too long")
	errProxyHeader   = proxyproto.ErrHeader

	// A home in object storage has no free space of its own (AVBL without a quota).
	errNoFreeSpaceFigure = errors.New("no free space figure")
)

// SFTP status codes (draft-ietf-secsh-filexfer-02 §7, the version pkg/sftp speaks), for
// the SFTP front end's column of the reply table.
const (
	sftpOK               = 0
	sftpNoSuchFile       = 2
	sftpPermissionDenied = 3
	sftpFailure          = 4
	sftpOpUnsupported    = 8
)

// replyRow is how one error is answered on each protocol. FTP codes are RFC 959 4.2.1's,
// with 554 for an invalid REST marker (RFC 1123 4.1.3.4, RFC 3659 5.3).
type replyRow struct {
	err   error  // matched with errors.Is; the first matching row wins
	code  int    // FTP reply code; 0 sends none (the client is gone)
	text  string // FTP reply text: fixed, the error itself is only logged
	sftp  uint32 // SFTP status
	label string // metrics label, for errors counted by a metric (logins, refusals)
}

// replyTable is the one map from errors to replies. Order matters: login errors wrap
// file-system errors (a home that cannot be opened), and errFileOpen wraps the file
// error it answers like.
var replyTable = []replyRow{
	// Logins (loginReply).
	{djangoclient.ErrInvalidCredentials, 530, "Login incorrect", sftpPermissionDenied, "invalid_credentials"},
	{errTooManyUser, 421, "Too many sessions for this user", sftpFailure, "rejected"},
	{djangoclient.ErrRejected, 421, "Service not available, closing control connection", sftpFailure, "rejected"},
	{djangoclient.ErrBadGrant, 421, "Service not available, closing control connection", sftpFailure, "rejected"},
	{errHomeUnusable, 421, "Service not available, closing control connection", sftpFailure, "rejected"},
	{djangoclient.ErrUnavailable, 421, "Authentication service unavailable", sftpFailure, "unavailable"},
	{context.Canceled, 421, "Authentication service unavailable", sftpFailure, "unavailable"},
	{context.DeadlineExceeded, 421, "Authentication service unavailable", sftpFailure, "unavailable"},

	// Connections refused at connect.
	{errBanned, 421, "Too many failed logins from your address, try again later", sftpFailure, "banned"},
	{errTooManyFromIP, 421, "Too many connections from your address", sftpFailure, "too_many_from_address"},
	{errTooManyConns, 421, "Too many connections, try again later", sftpFailure, "too_many_connections"},
	{errShuttingDown, 421, "Server shutting down", sftpFailure, "shutting_down"},

	// Storage (S3 homes): the service failing, and what object storage cannot do.
	{storage.ErrUnavailable, 451, "Storage unavailable", sftpFailure, ""},
	{storage.ErrUnsupported, 550, "Not supported on this storage", sftpOpUnsupported, ""},
	{storage.ErrBadName, 550, "File name not allowed on this storage", sftpFailure, ""},
	{storage.ErrTooLarge, 550, "Too many objects for this storage (DJFTPD_S3_RENAME_DIR_MAX)", sftpFailure, ""},
	{storage.ErrNotEmpty, 550, "Directory not empty", sftpFailure, ""},
	{errNoFreeSpaceFigure, 550, "No free space figure: object storage has no fixed size and no quota is set", sftpOpUnsupported, ""},

	// Files. "Permission denied" is a missing letter and nothing else (issue 20).
	{errNoLetter, 550, "Permission denied", sftpPermissionDenied, ""},
	{errBadPath, 553, "File name not allowed", sftpFailure, ""},
	{errIsHome, 550, "The home directory cannot be removed or renamed", sftpPermissionDenied, ""},
	{errEscapes, 550, "Path leaves the home directory", sftpPermissionDenied, ""},
	{errInvalidRest, 554, "Invalid REST parameter", sftpFailure, ""},
	{errIsDir, 550, "Is a directory", sftpFailure, ""},
	{syscall.EISDIR, 550, "Is a directory", sftpFailure, ""},
	{errNotDir, 550, "Not a directory", sftpFailure, ""},
	{syscall.ENOTDIR, 550, "Not a directory", sftpFailure, ""},
	{syscall.ENOTEMPTY, 550, "Directory not empty", sftpFailure, ""},
	{fs.ErrNotExist, 550, "No such file or directory", sftpNoSuchFile, ""},
	{fs.ErrExist, 550, "File exists", sftpFailure, ""},
	{fs.ErrPermission, 550, "Permission denied by the file system", sftpPermissionDenied, ""},
	{errQuotaUsedUp, 552, "Quota exceeded", sftpFailure, ""},
	{errFileOpen, 550, "File unavailable", sftpFailure, ""},

	// Transfers (finishTransfer).
	{errNoDataChannel, 425, "Use PASV, EPSV, PORT or EPRT first", sftpFailure, ""},
	{errTLSRequired, 521, "Data connections must be protected: send PBSZ 0 and PROT P", sftpOpUnsupported, ""},
	{errTLSNotResumed, 522, "Data connection must resume the control connection's TLS session", sftpFailure, ""},
	{errDataOpen, 425, "Cannot open data connection", sftpFailure, ""},
	{errAborted, 426, "Transfer aborted", sftpFailure, ""},
	{errPeerGone, 0, "", sftpFailure, ""},
	{errQuotaExceeded, 552, "Quota exceeded, upload discarded", sftpFailure, ""},
	{errLocal, 451, "Local error, transfer aborted", sftpFailure, ""},
	{errDataClosed, 426, "Connection closed, transfer aborted", sftpFailure, ""},
	{errTooManyPasv, 425, "Too many passive connections from your address", sftpFailure, ""},
}

// fileUnavailable answers an error no row names: an I/O error, anything unexpected.
var fileUnavailable = replyRow{nil, 550, "File unavailable", sftpFailure, ""}

// lookup is the row of err, or false if no row names it.
func lookup(err error) (replyRow, bool) {
	for _, r := range replyTable {
		if errors.Is(err, r.err) || r.err == errEscapes && rootEscape(err) {
			return r, true
		}
	}
	return replyRow{}, false
}

// replyFor is the FTP reply to err: its row's, else 550 File unavailable.
func replyFor(err error) (code int, text string) {
	r := rowOr(err, fileUnavailable)
	return r.code, r.text
}

// rowOr is err's row, or fallback when no row names it.
func rowOr(err error, fallback replyRow) replyRow {
	if r, ok := lookup(err); ok {
		return r
	}
	return fallback
}

// rowOf is the row of sentinel, which must be in the table.
func rowOf(sentinel error) replyRow {
	for _, r := range replyTable {
		if r.err == sentinel {
			return r
		}
	}
	panic("ftpdriver: no reply row for " + sentinel.Error())
}

// SFTPStatus is the SFTP status code (SSH_FX_*) for an error from this package's
// session core or the file system: 0 for nil, SSH_FX_FAILURE for one no row names.
func SFTPStatus(err error) uint32 {
	if err == nil {
		return sftpOK
	}
	return rowOr(err, fileUnavailable).sftp
}

// rootEscape reports an os.Root refusing a path that leaves it (a symlink out of the
// home). os does not export that error, so its text is matched; should it change, the
// refusal falls back to 550 File unavailable, still a refusal.
func rootEscape(err error) bool {
	const escapes = "path escapes from parent"
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.As(err, &pe):
		return pe.Err != nil && pe.Err.Error() == escapes
	case errors.As(err, &le):
		return le.Err != nil && le.Err.Error() == escapes
	}
	return false
}

// loginReply is the reply to a failed Authenticate (replyFor's table; an error it does
// not name counts as Django being unavailable), whether the connection closes, and the
// level the failure is logged at. Only ErrInvalidCredentials is the user's fault.
func loginReply(err error) (code int, text string, closeConn bool, level logLevel) {
	r := rowOr(err, rowOf(djangoclient.ErrUnavailable))
	switch r.label {
	case "invalid_credentials":
		level = levelInfo
	case "rejected":
		level = levelError
		if r.err == errTooManyUser {
			level = levelWarn
		}
	default:
		level = levelWarn
	}
	return r.code, r.text, r.code == 421, level
}

// loginResult is the djftpd_logins_total label of a login's outcome.
func loginResult(err error) string {
	if err == nil {
		return "ok"
	}
	return rowOr(err, rowOf(djangoclient.ErrUnavailable)).label
}

// logLevel names the slog level a reply is logged at.
type logLevel int

const (
	levelInfo logLevel = iota
	levelWarn
	levelError
)
