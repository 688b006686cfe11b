package sftpd

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"github.com/djftpd/djftpd/djangoclient"
)

// reader is an open file being downloaded; its close reports the transfer.
type reader struct {
	f       *os.File
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
	err := r.f.Close()
	r.mu.Lock()
	n, typ := r.n, djangoclient.EventFileSent
	if r.aborted {
		typ = djangoclient.EventIncompleteFileSent
	}
	r.mu.Unlock()
	r.h.emitTransfer(typ, r.path, n, r.started)
	return err
}

// writer is an open file being uploaded. An atomic upload writes a hidden temporary file
// renamed over the target when the client closes the handle; a session that ends with the
// handle open leaves the target untouched and the temporary file removed.
type writer struct {
	f         *os.File
	h         *handlers
	name, tmp string // tmp: "" when writing in place
	path      string
	minOffset int64 // writes before it are refused (append-only grants)
	appendAt  int64 // next offset of an append-mode open; -1 when not in append mode
	started   time.Time

	mu      sync.Mutex
	n       int64
	aborted bool
}

func (w *writer) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.appendAt >= 0 {
		off = w.appendAt // SSH_FXF_APPEND: every write goes to the end
	}
	if off < w.minOffset {
		return 0, fmt.Errorf("this account may only append: %w", errDenied)
	}
	n, err := w.f.WriteAt(p, off)
	w.n += int64(n)
	if w.appendAt >= 0 {
		w.appendAt += int64(n)
	}
	if err != nil {
		return n, fsError(err)
	}
	return n, nil
}

func (w *writer) ReadAt(p []byte, off int64) (int, error) { return w.f.ReadAt(p, off) }

func (w *writer) TransferError(error) {
	w.mu.Lock()
	w.aborted = true
	w.mu.Unlock()
}

func (w *writer) Close() error {
	w.mu.Lock()
	n, aborted := w.n, w.aborted
	w.mu.Unlock()
	err := w.f.Close()
	root := w.h.user.Root()
	if w.tmp != "" {
		if err == nil && !aborted {
			err = root.Rename(w.tmp, w.name)
		}
		if err != nil || aborted {
			_ = root.Remove(w.tmp)
		}
	}
	typ := djangoclient.EventFileReceived
	if err != nil || aborted {
		typ = djangoclient.EventIncompleteFileReceived
	}
	w.h.emitTransfer(typ, w.path, n, w.started)
	return fsError(err)
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
	var size int64
	fi, err := root.Stat(name)
	existed := err == nil
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, fsError(err)
	case existed && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("not a regular file: %w", errFailure)
	case existed && flags.Excl:
		return nil, fmt.Errorf("file exists: %w", errFailure)
	case !existed && !flags.Creat:
		return nil, errNoSuchFile
	case existed:
		size = fi.Size()
	}
	w := &writer{h: h, name: name, path: virtual(r.Filepath), appendAt: -1, started: h.now()}
	if !canW {
		w.minOffset = size
	}
	if flags.Append {
		w.appendAt = size
	}
	if h.atomicUploads && !readToo && !flags.Append && (flags.Trunc || !existed) {
		w.tmp = path.Join(path.Dir(name), uploadTempPrefix+randomHex(8)+".part")
		w.f, err = root.OpenFile(w.tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if err != nil {
			return nil, fsError(err)
		}
		return w, nil
	}
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
	if w.f, err = root.OpenFile(name, mode, 0o640); err != nil {
		return nil, fsError(err)
	}
	return w, nil
}

func (h *handlers) emitTransfer(typ, p string, n int64, started time.Time) {
	d := h.now().Sub(started).Milliseconds()
	h.user.Emit(djangoclient.Event{Type: typ, Path: &p, Bytes: &n, DurationMS: &d})
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
