package sftpd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/storage"
)

// reader is an open file being downloaded; its close reports the transfer.
type reader struct {
	f       io.ReaderAt // an *os.File, or an *fsReader on object storage
	closer  io.Closer
	h       *handlers
	path    string
	started time.Time

	mu      sync.Mutex
	n       int64
	aborted bool
}

func (r *reader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.f.ReadAt(p, off)
	r.mu.Lock()
	r.n += int64(n)
	r.mu.Unlock()
	return n, err
}

// TransferError is pkg/sftp telling that the session ended with the file open.
func (r *reader) TransferError(error) {
	r.mu.Lock()
	r.aborted = true
	r.mu.Unlock()
}

func (r *reader) Close() error {
	err := r.closer.Close()
	r.mu.Lock()
	n, typ := r.n, djangoclient.EventFileSent
	if r.aborted {
		typ = djangoclient.EventIncompleteFileSent
	}
	r.mu.Unlock()
	r.h.emitTransfer(typ, r.path, n, r.started)
	r.h.open.Add(-1)
	return err
}

// writer is an open file being uploaded. On a local home it is storage's LocalFile, the
// atomic rule FTP uploads follow too: a hidden temporary file renamed over the target
// when the client closes the handle; a session that ends with the handle open leaves the
// target untouched and the temporary file removed.
type writer struct {
	local     storage.LocalFile // local homes
	seq       *seqUpload        // object-storage homes: local is unused
	h         *handlers
	name      string
	path      string
	minOffset int64 // writes before it are refused (append-only grants)
	appendAt  int64 // append mode: the end so far; -1 when not in append mode
	appendMin int64 // append mode: the size at open
	started   time.Time

	// Quota: writes past base+credit+reserved need more reserved from guard; oldSize is
	// the target's size before, for the change the upload makes.
	guard                  QuotaGuard // nil: no quota
	base, credit, reserved int64
	end, oldSize           int64
	mu                     sync.Mutex
	n                      int64
	aborted, overQuota     bool
}

// errQuota is what a client gets when an upload would exceed the quota; the upload is
// then discarded (atomic) or kept as far as it fits (in place).
var errQuota = fmt.Errorf("quota exceeded: %w", errFailure)

// charge reserves quota for writes up to end; false when the quota is used up.
func (w *writer) charge(end int64) bool {
	if w.guard == nil || end <= w.end {
		return true
	}
	for end-w.base > w.credit+w.reserved {
		r := w.guard.Reserve()
		if r <= 0 {
			return false
		}
		w.reserved += r
	}
	w.end = end
	return true
}

func (w *writer) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.appendAt >= 0 && off < w.appendMin {
		// SSH_FXF_APPEND: a write that would land in the old bytes goes to the end.
		// Offsets past the old end are kept: clients that resume (OpenSSH's reput,
		// paramiko) send them, and pkg/sftp may run their writes out of order.
		off = w.appendAt
	}
	if off < w.minOffset {
		return 0, fmt.Errorf("this account may only append: %w", errDenied)
	}
	if w.overQuota || !w.charge(off+int64(len(p))) {
		w.overQuota = true
		return 0, errQuota
	}
	var n int
	var err error
	if w.seq != nil {
		n, err = w.seq.WriteAt(p, off)
	} else {
		n, err = w.local.WriteAt(p, off)
	}
	w.n += int64(n)
	if w.appendAt >= 0 {
		w.appendAt = max(w.appendAt, off+int64(n))
	}
	if err != nil {
		return n, fsError(err)
	}
	return n, nil
}

func (w *writer) ReadAt(p []byte, off int64) (int, error) {
	if w.seq != nil {
		return 0, errNoReadW
	}
	return w.local.ReadAt(p, off)
}

func (w *writer) TransferError(error) {
	w.mu.Lock()
	w.aborted = true
	w.mu.Unlock()
}

func (w *writer) Close() error {
	w.mu.Lock()
	n, aborted := w.n, w.aborted || w.overQuota
	w.mu.Unlock()
	var delta int64
	var err error
	if w.seq != nil {
		delta, err = w.closeFS(aborted)
	} else {
		delta, err = w.closeFile(aborted)
	}
	if w.guard != nil {
		w.guard.Release(delta)
	}
	typ := djangoclient.EventFileReceived
	if err != nil || aborted {
		typ = djangoclient.EventIncompleteFileReceived
	}
	w.h.emitTransfer(typ, w.path, n, w.started)
	w.h.open.Add(-1)
	return storageError(err)
}

// closeFile ends an upload to a local home: the temporary file of an atomic one renamed
// over the target, or removed when aborted. It returns the change of the home's usage.
func (w *writer) closeFile(aborted bool) (int64, error) {
	var size int64
	if fi, err := w.local.File().Stat(); err == nil {
		size = fi.Size()
	}
	delta := size - w.oldSize
	var err error
	if aborted {
		err = w.local.Abort()
	} else {
		err = w.local.Commit()
	}
	if w.local.Atomic() && (err != nil || aborted) {
		delta = 0 // the target is as it was
	}
	return delta, err
}

// openWrite opens a file for writing. The append flag needs a; otherwise w allows anything,
// and a alone allows no truncation and writes only at or past the file's size when opened
// (a resumed upload). A file that does not exist may be created with either.
func (h *handlers) openWrite(r *sftp.Request, readToo bool) (*writer, error) {
	flags, root, name := r.Pflags(), h.user.Root(), rel(r.Filepath)
	if name == "." {
		return nil, fmt.Errorf("is a directory: %w", errFailure)
	}
	canW, canA := h.user.Can('w'), h.user.Can('a')
	if flags.Append && !canA || !canW && (!canA || flags.Trunc) {
		return nil, errDenied
	}
	w := &writer{h: h, name: name, path: virtual(r.Filepath), appendAt: -1, started: h.now()}
	if root == nil {
		return h.openWriteFS(r, w)
	}
	existed, size, err := statForWrite(root, name, flags)
	if err != nil {
		return nil, err
	}
	if !canW {
		w.minOffset = size
	}
	if flags.Append {
		w.appendAt, w.appendMin = size, size
	}
	// Read-write opens too (pkg/sftp's Create is O_RDWR|O_CREATE|O_TRUNC): reads then see
	// the temporary file, what the handle wrote.
	atomic := h.atomicUploads && !flags.Append && (flags.Trunc || !existed)
	if err := w.guardQuota(atomic || flags.Trunc, size); err != nil {
		return nil, err
	}
	if err := w.openLocal(root, flags, readToo, atomic); err != nil {
		w.releaseQuota()
		return nil, fsError(err)
	}
	return w, nil
}

// statForWrite checks an open for writing against the file as it is: whether it exists,
// and its size.
func statForWrite(root *os.Root, name string, flags sftp.FileOpenFlags) (bool, int64, error) {
	fi, err := root.Stat(name)
	existed := err == nil
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return false, 0, fsError(err)
	case existed && !fi.Mode().IsRegular():
		return false, 0, fmt.Errorf("not a regular file: %w", errFailure)
	case existed && flags.Excl:
		return false, 0, fmt.Errorf("file exists: %w", errFailure)
	case !existed && !flags.Creat:
		return false, 0, errNoSuchFile
	case existed:
		return true, fi.Size(), nil
	}
	return false, 0, nil
}

// openLocal opens the writer's file in a local home: a hidden temporary file for an
// atomic upload, else the file itself with the open's create and truncate flags.
func (w *writer) openLocal(root *os.Root, flags sftp.FileOpenFlags, readToo, atomic bool) error {
	mode := os.O_WRONLY
	if readToo {
		mode = os.O_RDWR
	}
	if flags.Creat {
		mode |= os.O_CREATE
	}
	if flags.Trunc {
		mode |= os.O_TRUNC
	}
	var err error
	w.local, err = storage.OpenLocalFile(root, w.name, atomic, mode)
	return err
}

// guardQuota starts the upload's quota, when the user has one: an upload that replaces the
// file (atomic or truncating) is counted from zero with the old size as credit; one in
// place from the old size.
func (w *writer) guardQuota(replaces bool, size int64) error {
	w.oldSize, w.base, w.end = size, size, size
	if replaces {
		w.base, w.end, w.credit = 0, 0, size
	}
	qu, ok := w.h.user.(QuotaUser)
	if !ok {
		return nil
	}
	g, err := qu.GuardQuota(w.credit)
	if err != nil {
		return fmt.Errorf("%v: %w", err, errFailure) // the core's reason, for the client
	}
	w.guard = g
	return nil
}

func (w *writer) releaseQuota() {
	if w.guard != nil {
		w.guard.Release(0)
	}
}

func (h *handlers) emitTransfer(typ, p string, n int64, started time.Time) {
	d := h.now().Sub(started).Milliseconds()
	h.user.Emit(djangoclient.Event{Type: typ, Path: &p, Bytes: &n, DurationMS: &d})
}
