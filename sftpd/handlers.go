package sftpd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pkg/sftp"

	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/storage"
)

// uploadTempPrefix names the hidden temporary files of atomic uploads, as FTP's do; listings
// skip them.
const uploadTempPrefix = storage.UploadTempPrefix

// Refusals sent to the client. pkg/sftp maps them to status codes (errors.As on its fxerr)
// and sends their text.
var (
	errDenied      = sftp.ErrSSHFxPermissionDenied
	errNoSuchFile  = sftp.ErrSSHFxNoSuchFile
	errUnsupported = sftp.ErrSSHFxOpUnsupported
	errFailure     = sftp.ErrSSHFxFailure
)

// handlers serves one SFTP session's requests against its user's home. Every request passes
// its permission letter first (perm), then goes through the home's os.Root, so "..",
// absolute paths and symlinks cannot lead outside.
type handlers struct {
	user          User
	atomicUploads bool
	now           func() time.Time
	open          *atomic.Int64 // files open now (a transfer in progress), for a drain
	readGap       time.Duration // object-storage reads: see defaultReadGap
}

func newHandlers(u User, atomicUploads bool, open *atomic.Int64) sftp.Handlers {
	return newFileHandlers(u, atomicUploads, open).requestHandlers()
}

func newFileHandlers(u User, atomicUploads bool, open *atomic.Int64) *handlers {
	if open == nil {
		open = new(atomic.Int64)
	}
	return &handlers{user: u, atomicUploads: atomicUploads, now: time.Now, open: open, readGap: defaultReadGap}
}

// requestHandlers is h as the request server takes it.
func (h *handlers) requestHandlers() sftp.Handlers {
	return sftp.Handlers{FileGet: h, FilePut: h, FileCmd: h, FileList: h}
}

// Optional interfaces pkg/sftp looks for.
var (
	_ sftp.OpenFileWriter       = (*handlers)(nil)
	_ sftp.PosixRenameFileCmder = (*handlers)(nil)
	_ sftp.LstatFileLister      = (*handlers)(nil)
	_ sftp.RealPathFileLister   = (*handlers)(nil)
	_ sftp.ReadlinkFileLister   = (*handlers)(nil)
)

// rel maps an SFTP path ("/" is the home) to a name inside the home's root: cleaned, so ".."
// stops at the home, and relative.
func rel(p string) string {
	r := strings.TrimPrefix(path.Clean("/"+p), "/")
	if r == "" {
		return "."
	}
	return r
}

// virtual is the path as the user sees it.
func virtual(p string) string { return path.Clean("/" + p) }

// need refuses unless the grant holds one of letters.
func (h *handlers) need(letters string) error {
	for i := 0; i < len(letters); i++ {
		if h.user.Can(letters[i]) {
			return nil
		}
	}
	return errDenied
}

// fsError turns a file system error into the status the client gets, without host paths.
func fsError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, fs.ErrNotExist):
		return errNoSuchFile
	case errors.Is(err, fs.ErrPermission), isEscape(err):
		return errDenied
	case errors.Is(err, syscall.ENOTEMPTY):
		return fmt.Errorf("directory not empty: %w", errFailure)
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("file exists: %w", errFailure)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("not a directory: %w", errFailure)
	case errors.Is(err, syscall.EISDIR):
		return fmt.Errorf("is a directory: %w", errFailure)
	}
	if isFx(err) {
		return err
	}
	return errFailure
}

func isFx(err error) bool {
	for _, e := range []error{errDenied, errNoSuchFile, errUnsupported, errFailure, sftp.ErrSSHFxEOF} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// isEscape reports os.Root's refusal of a path that leaves the root ("path escapes from
// parent"), which has no exported sentinel.
func isEscape(err error) bool {
	var pe *fs.PathError
	return errors.As(err, &pe) && strings.Contains(pe.Err.Error(), "escapes")
}

// Fileread serves an open for reading: r.
func (h *handlers) Fileread(r *sftp.Request) (io.ReaderAt, error) {
	if err := h.need("r"); err != nil {
		return nil, err
	}
	if h.user.Root() == nil {
		return h.filereadFS(r)
	}
	f, err := h.user.Root().Open(rel(r.Filepath))
	if err != nil {
		return nil, fsError(err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("not a regular file: %w", errFailure)
	}
	h.open.Add(1)
	return &reader{f: f, closer: f, h: h, path: virtual(r.Filepath), started: h.now()}, nil
}

// filereadFS opens an object-storage file for ranged reads.
func (h *handlers) filereadFS(r *sftp.Request) (io.ReaderAt, error) {
	home, name := h.user.FS(), rel(r.Filepath)
	fi, err := home.Stat(r.Context(), name)
	if err != nil {
		return nil, storageError(err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file: %w", errFailure)
	}
	f := &fsReader{home: home, name: name, size: fi.Size(), gap: h.readGap}
	h.open.Add(1)
	return &reader{f: f, closer: f, h: h, path: virtual(r.Filepath), started: h.now()}, nil
}

// Filewrite serves an open for writing (see openWrite).
func (h *handlers) Filewrite(r *sftp.Request) (io.WriterAt, error) {
	w, err := h.openWrite(r, false)
	if err != nil {
		return nil, err // not a typed nil inside the interface
	}
	h.open.Add(1)
	return w, nil
}

// OpenFile serves an open for reading and writing: r, and what openWrite needs.
func (h *handlers) OpenFile(r *sftp.Request) (sftp.WriterAtReaderAt, error) {
	if err := h.need("r"); err != nil {
		return nil, err
	}
	w, err := h.openWrite(r, true)
	if err != nil {
		return nil, err
	}
	h.open.Add(1)
	return w, nil
}

// Filecmd serves the commands: setstat, rename, rmdir, mkdir, remove; link and symlink are
// refused whatever the grant.
func (h *handlers) Filecmd(r *sftp.Request) error {
	name := rel(r.Filepath)
	switch r.Method {
	case "Setstat":
		return h.setstat(r)
	case "Rename":
		return h.rename(r, false)
	case "Rmdir":
		if err := h.need("d"); err != nil {
			return err
		}
		if name == "." {
			return errDenied
		}
		if fi, err := h.lstat(r, name); err != nil {
			return storageError(err)
		} else if !fi.IsDir() {
			return fmt.Errorf("not a directory: %w", errFailure)
		}
		if err := h.home(r).rmdir(name); err != nil {
			return storageError(err)
		}
		h.emit(djangoclient.EventDirectoryDeleted, r.Filepath, "", nil)
		return nil
	case "Mkdir":
		if err := h.need("m"); err != nil {
			return err
		}
		if err := h.home(r).mkdir(name); err != nil {
			return storageError(err)
		}
		h.emit(djangoclient.EventDirectoryCreated, r.Filepath, "", nil)
		return nil
	case "Remove":
		return h.remove(r)
	case "Link", "Symlink":
		return fmt.Errorf("links cannot be created here: %w", errDenied)
	}
	return errUnsupported
}

func (h *handlers) remove(r *sftp.Request) error {
	if err := h.need("d"); err != nil {
		return err
	}
	name := rel(r.Filepath)
	fi, err := h.lstat(r, name)
	if err != nil {
		return storageError(err)
	} else if fi.IsDir() {
		return fmt.Errorf("is a directory: %w", errFailure)
	}
	if err := h.home(r).remove(name); err != nil {
		return storageError(err)
	}
	if qu, ok := h.user.(QuotaUser); ok && fi.Mode().IsRegular() {
		qu.AddUsage(-fi.Size())
	}
	h.emit(djangoclient.EventFileDeleted, r.Filepath, "", nil)
	return nil
}

// PosixRename serves posix-rename@openssh.com: f; the target is replaced.
func (h *handlers) PosixRename(r *sftp.Request) error { return h.rename(r, true) }

// rename needs f. SFTP's own rename must not replace an existing target (draft-02 6.5).
func (h *handlers) rename(r *sftp.Request, replace bool) error {
	if err := h.need("f"); err != nil {
		return err
	}
	from, to := rel(r.Filepath), rel(r.Target)
	if from == "." || to == "." {
		return errDenied
	}
	if !replace {
		if _, err := h.lstat(r, to); err == nil {
			return fmt.Errorf("target exists: %w", errFailure)
		}
	}
	if err := h.home(r).rename(from, to); err != nil {
		return storageError(err)
	}
	h.emit(djangoclient.EventFileRenamed, r.Filepath, r.Target, nil)
	return nil
}

// setstat: M for the mode, T for the times, w for the size (a truncation); owners are not
// changed by anyone.
func (h *handlers) setstat(r *sftp.Request) error {
	flags, attrs := r.AttrFlags(), r.Attributes()
	root, name := h.user.Root(), rel(r.Filepath)
	if flags.UidGid {
		return fmt.Errorf("owners cannot be changed: %w", errDenied)
	}
	if flags.Permissions && !h.user.Can('M') || flags.Acmodtime && !h.user.Can('T') || flags.Size && !h.user.Can('w') {
		return errDenied
	}
	if root == nil {
		return h.setstatFS(r)
	}
	if flags.Size {
		f, err := root.OpenFile(name, os.O_WRONLY, 0)
		if err != nil {
			return fsError(err)
		}
		err = f.Truncate(int64(attrs.Size))
		f.Close()
		if err != nil {
			return fsError(err)
		}
	}
	if flags.Permissions {
		if err := root.Chmod(name, attrs.FileMode().Perm()); err != nil {
			return fsError(err)
		}
	}
	if flags.Acmodtime {
		if err := root.Chtimes(name, attrs.AccessTime(), attrs.ModTime()); err != nil {
			return fsError(err)
		}
	}
	return nil
}

// Filelist serves opendir/readdir (l), stat (e or l) and readlink (l, see Readlink).
func (h *handlers) Filelist(r *sftp.Request) (sftp.ListerAt, error) {
	name := rel(r.Filepath)
	switch r.Method {
	case "List":
		if err := h.need("l"); err != nil {
			return nil, err
		}
		if root := h.user.Root(); root != nil {
			return h.list(root, name)
		}
		return h.listFS(r, name)
	case "Stat":
		if err := h.need("el"); err != nil {
			return nil, err
		}
		fi, err := h.home(r).stat(name)
		if err != nil {
			return nil, storageError(err)
		}
		return listerAt{named(fi, name)}, nil
	}
	return nil, errUnsupported
}

// Lstat serves lstat: e or l.
func (h *handlers) Lstat(r *sftp.Request) (sftp.ListerAt, error) {
	if err := h.need("el"); err != nil {
		return nil, err
	}
	name := rel(r.Filepath)
	fi, err := h.lstat(r, name)
	if err != nil {
		return nil, storageError(err)
	}
	return listerAt{named(fi, name)}, nil
}

// RealPath serves realpath: e or l. The answer is the cleaned path as the user sees it;
// symlinks are not resolved (their targets are the host's business).
func (h *handlers) RealPath(p string) (string, error) {
	if err := h.need("el"); err != nil {
		return "", err
	}
	return virtual(p), nil
}

// Readlink serves readlink: l, and only for a link whose target stays inside the home: an
// absolute target or one climbing above the home is refused, so the host's layout does not
// show.
func (h *handlers) Readlink(p string) (string, error) {
	if err := h.need("l"); err != nil {
		return "", err
	}
	name := rel(p)
	if h.user.Root() == nil {
		return "", fmt.Errorf("this storage has no links: %w", errUnsupported)
	}
	target, err := h.user.Root().Readlink(name)
	if err != nil {
		return "", fsError(err)
	}
	if path.IsAbs(target) || !fs.ValidPath(path.Clean(path.Join(path.Dir(name), target))) {
		return "", fmt.Errorf("link leads outside the home: %w", errDenied)
	}
	return target, nil
}

func (h *handlers) list(root *os.Root, name string) (sftp.ListerAt, error) {
	d, err := root.Open(name)
	if err != nil {
		return nil, fsError(err)
	}
	defer d.Close()
	entries, err := d.ReadDir(-1)
	if err != nil {
		return nil, fsError(err)
	}
	out := make(listerAt, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), uploadTempPrefix) {
			continue
		}
		if fi, err := e.Info(); err == nil {
			out = append(out, fi)
		}
	}
	return out, nil
}

// named gives the home itself the name "/" rather than the host directory's.
func named(fi fs.FileInfo, name string) fs.FileInfo {
	if name == "." {
		return renamed{fi, "/"}
	}
	return fi
}

type renamed struct {
	fs.FileInfo
	name string
}

func (r renamed) Name() string { return r.name }

// listerAt is a ListerAt over a slice.
type listerAt []fs.FileInfo

func (l listerAt) ListAt(dst []os.FileInfo, offset int64) (int, error) {
	if offset >= int64(len(l)) {
		return 0, io.EOF
	}
	n := copy(dst, l[offset:])
	if n < len(dst) {
		return n, io.EOF
	}
	return n, nil
}

func (h *handlers) emit(typ, p, to string, n *int64) {
	e := djangoclient.Event{Type: typ, Bytes: n}
	v := virtual(p)
	e.Path = &v
	if to != "" {
		t := virtual(to)
		e.ToPath = &t
	}
	h.user.Emit(e)
}
