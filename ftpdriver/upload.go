package ftpdriver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sync/atomic"
	"time"

	"github.com/djftpd/djftpd/access"
	"github.com/djftpd/djftpd/storage"
)

// writeMode says whether an upload replaces a file's content or appends to it.
type writeMode int

const (
	writeReplace writeMode = iota // STOR, STOU (at the REST marker, if any)
	writeAppend                   // APPE
)

// upload is one file upload into a home, the shape SFTPGo calls a BaseTransfer: the
// protocol front end checks it (check) before any reply, opens it (Open) once data
// can flow, feeds it (Write or ReadFrom), then ends it once: Commit keeps what
// arrived, Abort settles what a failure leaves. Nothing on disk changes before Open.
//
// A plain upload in atomic mode writes a hidden temporary file beside the target and
// renames it into place in Commit; appends and uploads at a REST marker write in place
// (DESIGN.md §4).
type upload struct {
	root         *os.Root        // the home when it is a local directory, else nil
	fs           storage.FS      // the home
	ctx          context.Context // of the storage calls
	remote       storage.Upload  // the upload to object storage, once Open (root nil)
	moved        atomic.Int64    // bytes written to remote, for live sessions
	virtual, rel string
	offset       int64 // REST marker; 0 without
	appendMode   bool
	ascii        bool      // TYPE A: CRLF on the wire becomes LF on disk
	atomic       bool      // a temporary file renamed into place on success
	existed      bool      // the target was there before
	oldSize      int64     // its size then
	oldMtime     time.Time // its modification time then
	kept         int64     // old bytes that stay: all for APPE, those before the REST marker, none for STOR
	f            *os.File  // nil until Open
	n            int64     // bytes received

	file storage.LocalFile // an atomic upload's temporary file (f), renamed at Commit

	quota       *access.QuotaGuard // nil without a quota
	settleUsage func(delta int64)  // records the usage change when quota is nil
}

// check reads what the upload will change, and refuses what can be refused before
// the 150: after it, RFC 959 allows only transfer failures.
func (up *upload) check(atomicUploads bool) error {
	if err := up.canWrite(); err != nil {
		return err
	}
	if dir, err := up.fs.Stat(up.ctx, path.Dir(up.rel)); err != nil {
		return err
	} else if !dir.IsDir() {
		return errNotDir
	}
	fi, serr := up.fs.Lstat(up.ctx, up.rel)
	switch {
	case serr == nil && fi.IsDir():
		return errIsDir
	case serr == nil:
		up.existed, up.oldSize, up.oldMtime = true, fi.Size(), fi.ModTime()
	case up.offset > 0 || !errors.Is(serr, fs.ErrNotExist):
		return serr // a resumed upload needs the file
	}
	up.atomic = atomicUploads && !up.appendMode && up.offset == 0 || up.root == nil
	switch {
	case up.appendMode:
		up.kept = up.oldSize
	case up.offset > 0:
		up.kept = up.offset
	}
	return nil
}

// canWrite refuses what the home's storage cannot do: appending, writing from a REST
// marker (object storage writes whole objects).
func (up *upload) canWrite() error {
	c := up.fs.Capabilities()
	switch {
	case up.appendMode && !c.Append:
		return fmt.Errorf("append: %w", storage.ErrUnsupported)
	case up.offset > 0 && !c.Resume:
		return fmt.Errorf("resume at an offset: %w", storage.ErrUnsupported)
	}
	return nil
}

// Open opens the file the upload writes. In place, the file is not truncated here:
// old bytes go only as new ones replace them. A home in object storage gets a
// streamed upload, visible only once committed.
func (up *upload) Open() error {
	var err error
	if up.root == nil {
		up.remote, err = up.fs.Create(up.ctx, up.rel, storage.CreateOptions{Atomic: true})
		return err
	}
	switch {
	case up.appendMode:
		up.f, err = up.root.OpenFile(up.rel, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
	case up.atomic:
		if up.file, err = storage.OpenLocalFile(up.root, up.rel, true, os.O_WRONLY); err == nil {
			up.f = up.file.File()
		}
	case up.offset > 0:
		if up.f, err = up.root.OpenFile(up.rel, os.O_WRONLY, 0); err == nil {
			if _, err = up.f.Seek(up.offset, io.SeekStart); err != nil {
				up.f.Close()
				up.f = nil
			}
		}
	default:
		up.f, err = up.root.OpenFile(up.rel, os.O_WRONLY|os.O_CREATE, 0o640)
	}
	return err
}

// Write writes p at the upload's position; past the quota it writes what fits and
// returns errQuotaExceeded.
func (up *upload) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		chunk := p
		if q := up.quota; q != nil {
			if q.Free() == 0 && q.Reserve() == 0 {
				return written, errQuotaExceeded
			}
			chunk = p[:min(int64(len(p)), q.Free())]
		}
		n, err := up.dst().Write(chunk)
		up.count(int64(n))
		written += n
		p = p[n:]
		if err != nil {
			return written, err
		}
	}
	return written, nil
}

// ReadFrom copies r (the data connection, or its TYPE A conversion) into the file.
// (*os.File).ReadFrom on the *net.TCPConn, or an io.LimitedReader of it, reaches
// splice(2). Not io.Copy: it would ask the TCPConn to WriteTo the file first, which
// falls back to a 32 KiB read loop. Past the quota it returns errQuotaExceeded if
// r has a byte more.
func (up *upload) ReadFrom(r io.Reader) (int64, error) {
	start := up.n
	q := up.quota
	var dst io.ReaderFrom = up.f
	if up.remote != nil {
		dst = writerReaderFrom{up.dst()}
	}
	if q == nil {
		n, err := dst.ReadFrom(r)
		up.count(n)
		return n, err
	}
	for {
		if q.Free() == 0 && q.Reserve() == 0 {
			return up.n - start, endOfData(r)
		}
		lr := &io.LimitedReader{R: r, N: q.Free()}
		n, err := dst.ReadFrom(lr)
		up.count(n)
		if err != nil || lr.N > 0 { // an error, or the end of the data before the limit
			return up.n - start, err
		}
	}
}

// dst is what the bytes go to: the local file, or the object storage upload.
func (up *upload) dst() io.Writer {
	if up.remote != nil {
		return countingWriter{up.remote, &up.moved}
	}
	return up.f
}

// countingWriter counts what it writes into n.
type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	m, err := c.w.Write(p)
	c.n.Add(int64(m))
	return m, err
}

// writerReaderFrom reads into an upload of object storage through a large copy
// buffer (no splice: the bytes go to the network again).
type writerReaderFrom struct{ w io.Writer }

func (w writerReaderFrom) ReadFrom(r io.Reader) (int64, error) {
	return io.CopyBuffer(struct{ io.Writer }{w.w}, struct{ io.Reader }{r}, make([]byte, remoteCopyBuffer))
}

// remoteCopyBuffer is the copy buffer of a transfer to or from object storage.
const remoteCopyBuffer = 256 << 10

// count records n bytes written.
func (up *upload) count(n int64) {
	up.n += n
	if up.quota != nil {
		up.quota.Use(n)
	}
}

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

// Commit ends a complete upload: the file takes its place. An error is errLocal.
func (up *upload) Commit() error { return up.end(nil) }

// Abort ends an upload that failed with cause and returns cause, or a local error
// settling it: an atomic upload leaves nothing, one in place keeps what arrived
// (what a client resumes), one over quota keeps nothing of itself.
func (up *upload) Abort(cause error) error { return up.end(cause) }

// end closes the file and settles what stays on disk and in the usage record: bytes
// actually written count, whatever the outcome.
func (up *upload) end(err error) error {
	size := up.oldSize // the target's size afterwards
	if up.remote != nil {
		size, err = up.settleRemote(err)
		up.remote = nil
	}
	if up.f != nil {
		if up.atomic {
			size, err = up.commitTemp(err)
		} else {
			size, err = up.settleInPlace(err)
		}
		up.f = nil
	}
	delta := size - up.oldSize
	switch {
	case up.quota != nil:
		up.quota.Release(delta)
	case up.settleUsage != nil:
		up.settleUsage(delta)
	}
	return err
}

// settleRemote commits a complete upload to object storage, else aborts it: nothing
// is visible of an upload that failed, and no multipart upload stays pending.
func (up *upload) settleRemote(err error) (int64, error) {
	if err == nil {
		if err = up.remote.Commit(); err == nil {
			return up.n, nil
		}
		return up.oldSize, fmt.Errorf("commit upload: %w", err)
	}
	_ = up.remote.Abort()
	return up.oldSize, err
}

// commitTemp renames a complete atomic upload into place, else removes it (storage's
// LocalFile: the rule SFTP uploads follow too).
func (up *upload) commitTemp(err error) (int64, error) {
	if err != nil {
		_ = up.file.Abort()
		return up.oldSize, err
	}
	if cerr := up.file.Commit(); cerr != nil {
		return up.oldSize, fmt.Errorf("%w: commit upload: %w", errLocal, cerr)
	}
	return up.n, nil
}

// settleInPlace ends an in-place upload. The file ends where the new bytes end. One
// that failed before any byte arrived leaves the file as it was (a file it created is
// removed); one over quota keeps nothing of the upload: appended bytes are cut off and
// the mtime put back. (A broken connection keeps what arrived: that is what a client
// resumes with REST or APPE.)
func (up *upload) settleInPlace(err error) (int64, error) {
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
		_ = up.root.Remove(up.rel)
		size = 0
	case overQuota && up.appendMode:
		_ = up.root.Chtimes(up.rel, time.Time{}, up.oldMtime)
	}
	return size, err
}
