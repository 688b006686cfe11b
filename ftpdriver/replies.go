package ftpdriver

import (
	"errors"
	"io/fs"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/storage"
)

// Reply codes, named with their source.
const (
	statusServiceNotAvailable = 421 // RFC 959 4.2.1: closing control connection
	statusNotLoggedIn         = 530 // RFC 959 4.2.1
	statusFileUnavailable     = 550 // RFC 959 4.2.1: not found, no access
	statusBadFileName         = 553 // RFC 959 4.2.1: file name not allowed
	statusInvalidRest         = 554 // RFC 1123 4.1.3.4, RFC 3659 5.3: invalid REST parameter
)

// loginReply maps an Authenticate error to the reply, whether the connection closes,
// and the level the failure is logged at (STYLE.md §9, one table). Only
// ErrInvalidCredentials is the user's fault.
func loginReply(err error) (code int, text string, closeConn bool, level logLevel) {
	switch {
	case errors.Is(err, djangoclient.ErrInvalidCredentials):
		return statusNotLoggedIn, "Login incorrect", false, levelInfo
	case errors.Is(err, errTooManyUser):
		return statusServiceNotAvailable, "Too many sessions for this user", true, levelWarn
	case errors.Is(err, djangoclient.ErrRejected), errors.Is(err, djangoclient.ErrBadGrant):
		return statusServiceNotAvailable, "Service not available, closing control connection", true, levelError
	default: // ErrUnavailable, cancelled contexts, anything unexpected
		return statusServiceNotAvailable, "Authentication service unavailable", true, levelWarn
	}
}

// loginResult is the djftpd_logins_total label of a login's outcome.
func loginResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, djangoclient.ErrInvalidCredentials):
		return "invalid_credentials"
	case errors.Is(err, djangoclient.ErrRejected), errors.Is(err, djangoclient.ErrBadGrant), errors.Is(err, errTooManyUser):
		return "rejected"
	default:
		return "unavailable"
	}
}

// fsReply maps a file-operation error to a reply. The client gets a fixed text; the
// error itself is logged by the caller.
func fsReply(err error) (code int, text string) {
	switch {
	case errors.Is(err, storage.ErrUnavailable):
		return 451, "Storage unavailable"
	case errors.Is(err, errBadPath):
		return statusBadFileName, "File name not allowed"
	case errors.Is(err, storage.ErrBadName):
		return statusFileUnavailable, "File name not allowed on this storage"
	case errors.Is(err, storage.ErrNotEmpty):
		return statusFileUnavailable, "Directory not empty"
	case errors.Is(err, storage.ErrTooLarge):
		return statusFileUnavailable, "Too many objects for this storage (DJFTPD_S3_RENAME_DIR_MAX)"
	case errors.Is(err, storage.ErrUnsupported):
		return statusFileUnavailable, "Not supported on this storage"
	case errors.Is(err, fs.ErrNotExist):
		return statusFileUnavailable, "No such file or directory"
	case errors.Is(err, fs.ErrExist):
		return statusFileUnavailable, "File exists"
	case errors.Is(err, errInvalidRest):
		return statusInvalidRest, "Invalid REST parameter"
	default: // fs.ErrPermission, os.Root escapes, not empty, I/O errors
		return statusFileUnavailable, "Permission denied"
	}
}

// logLevel names the slog level a reply is logged at.
type logLevel int

const (
	levelInfo logLevel = iota
	levelWarn
	levelError
)
