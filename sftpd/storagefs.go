package sftpd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/pkg/sftp"

	"github.com/djftpd/djftpd/storage"
)

// Object-storage homes (User.Root nil) are served through the user's storage.FS. S3
// writes an object whole and in order: an upload is a storage.Upload fed sequentially from
// offset 0, reads are ranged Opens, and what S3 cannot do (append, resume, truncation,
// mode, times, links) is refused with SSH_FX_OP_UNSUPPORTED and a message.

// aheadWindow bounds the bytes an upload holds that arrived before the bytes preceding
// them: pkg/sftp's request server runs reads and writes on several workers, so a client's
// in-order pipelined writes (OpenSSH keeps 64 of 32 KiB in flight) may reach WriteAt out
// of order. A write further ahead is refused.
const aheadWindow = 8 << 20

var (
	errNoAppend  = fmt.Errorf("this storage cannot append to or resume a file: upload it whole: %w", errUnsupported)
	errInOrder   = fmt.Errorf("this storage writes files in order from the start: %w", errUnsupported)
	errNoSetstat = fmt.Errorf("this storage keeps no mode, times or size to set: %w", errUnsupported)
	errNoReadW   = fmt.Errorf("this storage cannot read a file being uploaded: %w", errUnsupported)
)

// storageError maps the storage layer's errors, then the file system's (fsError).
func storageError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrUnsupported):
		return fmt.Errorf("not supported by this storage: %w", errUnsupported)
	case errors.Is(err, storage.ErrUnavailable):
		return fmt.Errorf("storage unavailable, try again later: %w", errFailure)
	case errors.Is(err, storage.ErrBadName):
		return fmt.Errorf("name not allowed: %w", errFailure)
	case errors.Is(err, storage.ErrNotEmpty):
		return fmt.Errorf("directory not empty: %w", errFailure)
	case errors.Is(err, storage.ErrTooLarge):
		return fmt.Errorf("too many objects or bytes for this storage: %w", errFailure)
	case errors.Is(err, storage.ErrIsDir):
		return fmt.Errorf("is a directory: %w", errFailure)
	case errors.Is(err, storage.ErrNotDir):
		return fmt.Errorf("not a directory: %w", errFailure)
	}
	return fsError(err)
}

// seqUpload feeds a storage.Upload in order, holding at most aheadWindow bytes of writes
// that came early. Its owner (writer) serializes the calls.
type seqUpload struct {
	up    storage.Upload
	next  int64            // the offset the upload has reached
	ahead map[int64][]byte // early writes by offset (copies: pkg/sftp reuses its buffers)
	held  int64
	// failed: a write was refused or failed, so the file cannot be whole; it is discarded.
	failed bool
}

func (s *seqUpload) WriteAt(p []byte, off int64) (int, error) {
	n, err := s.writeAt(p, off)
	if err != nil {
		s.failed = true
	}
	return n, err
}

func (s *seqUpload) writeAt(p []byte, off int64) (int, error) {
	switch {
	case off < s.next:
		return 0, errInOrder
	case off > s.next:
		if _, dup := s.ahead[off]; dup || s.held+int64(len(p)) > aheadWindow || off-s.next > aheadWindow {
			return 0, errInOrder
		}
		if s.ahead == nil {
			s.ahead = map[int64][]byte{}
		}
		s.ahead[off] = append([]byte(nil), p...)
		s.held += int64(len(p))
		return len(p), nil
	}
	if err := s.write(p); err != nil {
		return 0, err
	}
	for b, ok := s.ahead[s.next]; ok; b, ok = s.ahead[s.next] {
		delete(s.ahead, s.next)
		s.held -= int64(len(b))
		if err := s.write(b); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (s *seqUpload) write(p []byte) error {
	n, err := s.up.Write(p)
	s.next += int64(n)
	return storageError(err)
}

// whole reports whether every byte written is in the upload (no hole before early writes).
func (s *seqUpload) whole() bool { return !s.failed && len(s.ahead) == 0 }

// openWriteFS opens an upload to an object-storage home: a new file or one replaced whole
// (the truncate flag); appending and resuming are refused. A read-write handle (pkg/sftp's
// Create) uploads; only its reads are refused (writer.ReadAt).
func (h *handlers) openWriteFS(r *sftp.Request, w *writer) (*writer, error) {
	flags, home := r.Pflags(), h.user.FS()
	caps := home.Capabilities()
	fi, err := home.Stat(r.Context(), w.name)
	existed := err == nil
	switch {
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return nil, storageError(err)
	case existed && !fi.Mode().IsRegular():
		return nil, fmt.Errorf("not a regular file: %w", errFailure)
	case existed && flags.Excl:
		return nil, fmt.Errorf("file exists: %w", errFailure)
	case !existed && !flags.Creat:
		return nil, errNoSuchFile
	case flags.Append && !caps.Append, existed && !flags.Trunc && !caps.Resume:
		return nil, errNoAppend
	}
	var size int64
	if existed {
		size = fi.Size()
	}
	if !h.user.Can('w') {
		w.minOffset = size
	}
	if err := w.guardQuota(true, size); err != nil {
		return nil, err
	}
	// The upload outlives this request: it ends at the handle's close.
	up, err := home.Create(context.Background(), w.name, storage.CreateOptions{Atomic: true})
	if err != nil {
		w.releaseQuota()
		return nil, storageError(err)
	}
	w.seq = &seqUpload{up: up}
	return w, nil
}

// closeFS ends an upload to an object-storage home: committed when whole, else aborted
// (nothing of it left). It returns the change of the home's usage.
func (w *writer) closeFS(aborted bool) (int64, error) {
	if aborted || !w.seq.whole() {
		err := w.seq.up.Abort()
		if err == nil && !aborted {
			err = fmt.Errorf("upload incomplete (a write was refused or left a hole): nothing stored: %w", errFailure)
		}
		return 0, err
	}
	if err := w.seq.up.Commit(); err != nil {
		return 0, err
	}
	return w.seq.next - w.oldSize, nil
}

// defaultReadGap is how long a read a little ahead of the stream waits for the reads before
// it (pkg/sftp's workers run a client's in-order reads out of order) before it reopens the
// object at its own offset instead.
const defaultReadGap = 250 * time.Millisecond

// fsReader reads an object at offsets: one ranged Open, read in order; a read that does not
// follow the one before waits its turn (gap) or reopens the object there.
type fsReader struct {
	home storage.FS
	name string
	size int64
	gap  time.Duration

	mu    sync.Mutex
	rc    io.ReadCloser
	pos   int64
	moved chan struct{} // closed and replaced when pos changes
}

// awaitTurn waits, with f.mu held, until the stream reaches off, when off is a little
// ahead of it; it gives up after f.gap without progress.
func (f *fsReader) awaitTurn(off int64) {
	for f.rc != nil && off > f.pos && off-f.pos <= aheadWindow {
		if f.moved == nil {
			f.moved = make(chan struct{})
		}
		moved := f.moved
		f.mu.Unlock()
		t := time.NewTimer(f.gap)
		select {
		case <-moved:
			t.Stop()
			f.mu.Lock()
		case <-t.C:
			f.mu.Lock()
			return
		}
	}
}

func (f *fsReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= f.size {
		return 0, io.EOF
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.awaitTurn(off)
	defer func() {
		if f.moved != nil {
			close(f.moved)
			f.moved = nil
		}
	}()
	if f.rc == nil || off != f.pos {
		if f.rc != nil {
			f.rc.Close()
			f.rc = nil
		}
		rc, err := f.home.Open(context.Background(), f.name, off)
		if err != nil {
			return 0, storageError(err)
		}
		f.rc, f.pos = rc, off
	}
	n, err := io.ReadFull(f.rc, p)
	f.pos += int64(n)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return n, io.EOF
	}
	if err != nil {
		f.rc.Close()
		f.rc = nil
		return n, storageError(err)
	}
	return n, nil
}

func (f *fsReader) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.rc == nil {
		return nil
	}
	err := f.rc.Close()
	f.rc = nil
	return err
}

// homeOps runs the metadata requests on the home: its os.Root when local (as before the
// storage layer), else its storage.FS. Errors are raw: callers map them (storageError).
type homeOps struct {
	h   *handlers
	ctx context.Context
}

func (h *handlers) home(r *sftp.Request) homeOps { return homeOps{h: h, ctx: r.Context()} }

func (h *handlers) lstat(r *sftp.Request, name string) (fs.FileInfo, error) {
	if root := h.user.Root(); root != nil {
		return root.Lstat(name)
	}
	return h.user.FS().Lstat(r.Context(), name)
}

func (o homeOps) stat(name string) (fs.FileInfo, error) {
	if root := o.h.user.Root(); root != nil {
		return root.Stat(name)
	}
	return o.h.user.FS().Stat(o.ctx, name)
}

func (o homeOps) mkdir(name string) error {
	if root := o.h.user.Root(); root != nil {
		return root.Mkdir(name, 0o750)
	}
	return o.h.user.FS().Mkdir(o.ctx, name)
}

func (o homeOps) rmdir(name string) error {
	if root := o.h.user.Root(); root != nil {
		return root.Remove(name)
	}
	return o.h.user.FS().Rmdir(o.ctx, name)
}

func (o homeOps) remove(name string) error {
	if root := o.h.user.Root(); root != nil {
		return root.Remove(name)
	}
	return o.h.user.FS().Remove(o.ctx, name)
}

func (o homeOps) rename(from, to string) error {
	if root := o.h.user.Root(); root != nil {
		return root.Rename(from, to)
	}
	return o.h.user.FS().Rename(o.ctx, from, to)
}

// setstatFS applies a setstat (letters already checked) to an object-storage file, as far
// as the storage can: S3 keeps no mode, no settable times and cannot truncate.
func (h *handlers) setstatFS(r *sftp.Request) error {
	flags, attrs := r.AttrFlags(), r.Attributes()
	home, name := h.user.FS(), rel(r.Filepath)
	caps := home.Capabilities()
	if _, err := home.Stat(r.Context(), name); err != nil {
		return storageError(err)
	}
	if flags.Size || flags.Permissions && !caps.Chmod || flags.Acmodtime && !caps.Mtime {
		return errNoSetstat
	}
	if flags.Permissions {
		if err := home.Chmod(r.Context(), name, attrs.FileMode().Perm()); err != nil {
			return storageError(err)
		}
	}
	if flags.Acmodtime {
		if err := home.Chtimes(r.Context(), name, attrs.ModTime()); err != nil {
			return storageError(err)
		}
	}
	return nil
}

// listFS reads an object-storage directory, page by page, into the listing pkg/sftp serves.
func (h *handlers) listFS(r *sftp.Request, name string) (sftp.ListerAt, error) {
	home := h.user.FS()
	fi, err := home.Stat(r.Context(), name)
	if err != nil {
		return nil, storageError(err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("not a directory: %w", errFailure)
	}
	l, err := home.List(r.Context(), name)
	if err != nil {
		return nil, storageError(err)
	}
	all, err := storage.ReadAll(r.Context(), l)
	if err != nil {
		return nil, storageError(err)
	}
	return listerAt(all), nil
}
