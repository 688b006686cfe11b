package ftpdriver

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/djftpd/djftpd/djangoclient"
)

// realFSErrors makes the file system's own errors, so the table is tested against what
// os returns and not against sentinels alone.
func realFSErrors(t *testing.T) map[string]error {
	t.Helper()
	dir := t.TempDir()
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(dir, "full", "inner"), 0o750))
	must(os.WriteFile(filepath.Join(dir, "file"), nil, 0o640))
	must(os.Symlink("/", filepath.Join(dir, "out")))
	root, err := os.OpenRoot(dir)
	must(err)
	t.Cleanup(func() { root.Close() })
	errs := map[string]error{}
	errs["not empty"] = root.Remove("full")
	errs["dir onto file"] = root.Rename("full", "file")
	errs["file onto dir"] = root.Rename("file", "full")
	errs["missing"] = root.Remove("missing")
	errs["exists"] = root.Mkdir("full", 0o750)
	_, errs["escape"] = root.Open("out/etc")
	_, errs["dotdot"] = root.Open("../x")
	for name, err := range errs {
		if err == nil {
			t.Fatalf("%s: no error from the file system", name)
		}
	}
	return errs
}

// TestReplyFor: one row per error the package answers, wrapped as handlers wrap them.
// "550 Permission denied" belongs to a missing permission letter only (issue 20).
func TestReplyFor(t *testing.T) {
	t.Parallel()
	real := realFSErrors(t)
	cases := []struct {
		name string
		err  error
		code int
		text string
		sftp uint32
	}{
		{"letter", errNoLetter, 550, "Permission denied", sftpPermissionDenied},
		{"fs permission", fs.ErrPermission, 550, "Permission denied by the file system", sftpPermissionDenied},
		{"bad path", errBadPath, 553, "File name not allowed", sftpFailure},
		{"home", errIsHome, 550, "The home directory cannot be removed or renamed", sftpPermissionDenied},
		{"escape", real["escape"], 550, "Path leaves the home directory", sftpPermissionDenied},
		{"dotdot", real["dotdot"], 550, "Path leaves the home directory", sftpPermissionDenied},
		{"rest", errInvalidRest, 554, "Invalid REST parameter", sftpFailure},
		{"is dir", errIsDir, 550, "Is a directory", sftpFailure},
		{"file onto dir", real["file onto dir"], 550, "File exists", sftpFailure},
		{"eisdir", syscall.EISDIR, 550, "Is a directory", sftpFailure},
		{"not dir", errNotDir, 550, "Not a directory", sftpFailure},
		{"dir onto file", real["dir onto file"], 550, "Not a directory", sftpFailure},
		{"not empty", real["not empty"], 550, "Directory not empty", sftpFailure},
		{"missing", real["missing"], 550, "No such file or directory", sftpNoSuchFile},
		{"exists", real["exists"], 550, "File exists", sftpFailure},
		{"quota before", errQuotaUsedUp, 552, "Quota exceeded", sftpFailure},
		{"quota during", errQuotaExceeded, 552, "Quota exceeded, upload discarded", sftpFailure},
		{"open upload, missing", fmt.Errorf("%w: %w", errFileOpen, fs.ErrNotExist), 550, "No such file or directory", sftpNoSuchFile},
		{"open upload, other", fmt.Errorf("%w: %w", errFileOpen, errors.New("EIO")), 550, "File unavailable", sftpFailure},
		{"unknown", errors.New("EIO"), 550, "File unavailable", sftpFailure},
		{"no data channel", errNoDataChannel, 425, "Use PASV, EPSV, PORT or EPRT first", sftpFailure},
		{"tls required", errTLSRequired, 521, "Data connections must be protected: send PBSZ 0 and PROT P", sftpOpUnsupported},
		{"tls not resumed", errTLSNotResumed, 522, "Data connection must resume the control connection's TLS session", sftpFailure},
		{"data open", fmt.Errorf("%w: refused", errDataOpen), 425, "Cannot open data connection", sftpFailure},
		{"abort", errAborted, 426, "Transfer aborted", sftpFailure},
		{"peer gone", errPeerGone, 0, "", sftpFailure},
		{"local", fmt.Errorf("%w: disk full", errLocal), 451, "Local error, transfer aborted", sftpFailure},
		{"data closed", errDataClosed, 426, "Connection closed, transfer aborted", sftpFailure},
		{"pasv", errTooManyPasv, 425, "Too many passive connections from your address", sftpFailure},
		{"banned", errBanned, 421, "Too many failed logins from your address, try again later", sftpFailure},
		{"from ip", errTooManyFromIP, 421, "Too many connections from your address", sftpFailure},
		{"conns", errTooManyConns, 421, "Too many connections, try again later", sftpFailure},
		{"shutdown", errShuttingDown, 421, "Server shutting down", sftpFailure},
		{"credentials", djangoclient.ErrInvalidCredentials, 530, "Login incorrect", sftpPermissionDenied},
		{"user sessions", errTooManyUser, 421, "Too many sessions for this user", sftpFailure},
		{"rejected", djangoclient.ErrRejected, 421, "Service not available, closing control connection", sftpFailure},
		{"bad grant", djangoclient.ErrBadGrant, 421, "Service not available, closing control connection", sftpFailure},
		{"home unusable", errHomeUnusable, 421, "Service not available, closing control connection", sftpFailure},
		{"unavailable", djangoclient.ErrUnavailable, 421, "Authentication service unavailable", sftpFailure},
	}
	for _, c := range cases {
		err := fmt.Errorf("%s: %w", c.name, c.err)
		if code, text := replyFor(err); code != c.code || text != c.text {
			t.Errorf("%s: replyFor = %d %q, want %d %q", c.name, code, text, c.code, c.text)
		}
		if got := SFTPStatus(err); got != c.sftp {
			t.Errorf("%s: SFTPStatus = %d, want %d", c.name, got, c.sftp)
		}
	}
	if SFTPStatus(nil) != sftpOK {
		t.Error("SFTPStatus(nil) is not OK")
	}
}

// TestReplyTableRows: every row's sentinel is reachable (no earlier row swallows it)
// and only the missing letter answers "Permission denied".
func TestReplyTableRows(t *testing.T) {
	t.Parallel()
	for _, r := range replyTable {
		if got, _ := lookup(fmt.Errorf("x: %w", r.err)); got.err != r.err {
			t.Errorf("%v is answered by the row of %v", r.err, got.err)
		}
		if r.text == "Permission denied" && r.err != errNoLetter {
			t.Errorf("%v answers %q: that text is for a missing permission letter", r.err, r.text)
		}
	}
}

func TestLoginReply(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err   error
		code  int
		close bool
		level logLevel
		label string
	}{
		{djangoclient.ErrInvalidCredentials, 530, false, levelInfo, "invalid_credentials"},
		{errTooManyUser, 421, true, levelWarn, "rejected"},
		{djangoclient.ErrRejected, 421, true, levelError, "rejected"},
		{djangoclient.ErrBadGrant, 421, true, levelError, "rejected"},
		{fmt.Errorf("open home: %w: %w", errHomeUnusable, fs.ErrPermission), 421, true, levelError, "rejected"},
		{djangoclient.ErrUnavailable, 421, true, levelWarn, "unavailable"},
		{errors.New("unexpected"), 421, true, levelWarn, "unavailable"},
	}
	for _, c := range cases {
		code, _, closeConn, level := loginReply(c.err)
		if code != c.code || closeConn != c.close || level != c.level {
			t.Errorf("loginReply(%v) = %d close=%v level=%d, want %d %v %d", c.err, code, closeConn, level, c.code, c.close, c.level)
		}
		if got := loginResult(c.err); got != c.label {
			t.Errorf("loginResult(%v) = %q, want %q", c.err, got, c.label)
		}
	}
	if loginResult(nil) != "ok" {
		t.Error(`loginResult(nil) != "ok"`)
	}
}

// TestRefusalReason: the metric label of each refusal at connect.
func TestRefusalReason(t *testing.T) {
	t.Parallel()
	for err, want := range map[error]string{
		errBanned: "banned", errTooManyConns: "too_many_connections",
		errTooManyFromIP: "too_many_from_address", errShuttingDown: "shutting_down",
	} {
		if got := refusalReason(fmt.Errorf("x: %w", err)); got != want {
			t.Errorf("refusalReason(%v) = %q, want %q", err, got, want)
		}
	}
}

// TestFinishTransfer: the final replies of a transfer for each way it can end, as the
// client reads them.
func TestFinishTransfer(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	cases := []struct {
		err  error
		want string
	}{
		{nil, "226 Transfer complete, 5 bytes\r\n"},
		{errNoDataChannel, "425 Use PASV, EPSV, PORT or EPRT first\r\n"},
		{errTLSRequired, "521 Data connections must be protected: send PBSZ 0 and PROT P\r\n"},
		{errTLSNotResumed, "522 Data connection must resume the control connection's TLS session\r\n"},
		{fmt.Errorf("%w: refused", errDataOpen), "425 Cannot open data connection\r\n"},
		{errAborted, "426 Transfer aborted\r\n226 ABOR successful\r\n"},
		{errPeerGone, ""},
		{fmt.Errorf("%w: %w", errFileOpen, fs.ErrNotExist), "550 No such file or directory\r\n"},
		{errQuotaExceeded, "552 Quota exceeded, upload discarded\r\n"},
		{fmt.Errorf("%w: disk full", errLocal), "451 Local error, transfer aborted\r\n"},
		{fmt.Errorf("%w: reset", errDataStalled), "426 Connection closed, transfer aborted\r\n"},
		{errors.New("connection reset by peer"), "426 Connection closed, transfer aborted\r\n"},
	}
	for _, c := range cases {
		server, client := net.Pipe()
		s := newSession(ts.srv, server)
		go func() {
			s.finishTransfer("RETR", "/f", 5, time.Now(), c.err)
			server.Close()
		}()
		got, _ := io.ReadAll(client)
		if string(got) != c.want {
			t.Errorf("finishTransfer(%v) wrote %q, want %q", c.err, got, c.want)
		}
	}
}
