package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// UploadTempPrefix names the hidden temporary files of atomic local uploads; listings
// skip them.
const UploadTempPrefix = ".djftpd-upload-"

// Local keeps homes in directories under one root directory, each home opened as an
// os.Root so no name, symlink included, leads out of it. The sessions of one home share
// its os.Root (one descriptor, not one a session) while the directory at the home's
// path is still the one that was opened.
type Local struct {
	dir  string
	root *os.Root

	mu    sync.Mutex
	homes map[string]*sharedHome // by path relative to dir: the root sessions share now
}

// sharedHome is one open home and the sessions using it; the last release closes it.
type sharedHome struct {
	root *os.Root
	fi   fs.FileInfo // the directory the root is open on (device and inode)
	refs int         // guarded by Local.mu
}

// NewLocal opens the root every home must be inside, creating it when create is set.
func NewLocal(dir string, create bool) (*Local, error) {
	if create {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("create home root: %w", err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open home root: %w", err)
	}
	return NewLocalAt(dir, root), nil
}

// NewLocalAt is NewLocal over a root already open on dir; Close closes it.
func NewLocalAt(dir string, root *os.Root) *Local {
	return &Local{dir: dir, root: root, homes: make(map[string]*sharedHome)}
}

func (l *Local) String() string { return "local" }

// Capabilities of a local file system: everything.
func (l *Local) Capabilities() Capabilities { return (*LocalFS)(nil).Capabilities() }

// Close closes the root; homes opened from it stay usable until closed.
func (l *Local) Close() error { return l.root.Close() }

// Home opens the home directory, an absolute path inside the root, through the
// root: a symlink planted under it cannot lead the home out of it. A home already
// open for another session is shared when an lstat of its path, through the root,
// finds the very directory it was opened on: a home removed, renamed away or replaced
// (by a new directory or a symlink) since is opened afresh, and the old root serves
// only the sessions that had it. The open root keeps its inode alive, so a recreated
// directory cannot have the same device and inode.
func (l *Local) Home(_ context.Context, home string, create bool) (FS, error) {
	rel, err := filepath.Rel(l.dir, home)
	if err != nil || !filepath.IsLocal(rel) && rel != "." {
		return nil, fmt.Errorf("home %q is not inside %q: %w", home, l.dir, ErrBadName)
	}
	if h := l.acquire(rel); h != nil {
		if fi, err := l.root.Lstat(rel); err == nil && os.SameFile(fi, h.fi) {
			return &LocalFS{Root: h.root, home: h, local: l, rel: rel}, nil
		}
		l.release(rel, h)
	}
	r, err := l.openHome(rel, create)
	if err != nil {
		return nil, err
	}
	fi, err := r.Stat(".")
	if err != nil { // cannot tell which directory it is: this session alone uses it
		return &LocalFS{Root: r}, nil
	}
	h := l.share(rel, r, fi)
	return &LocalFS{Root: h.root, home: h, local: l, rel: rel}, nil
}

// openHome opens a home's own root, creating the home (mode 0750) when it is missing
// and create is set.
func (l *Local) openHome(rel string, create bool) (*os.Root, error) {
	// Open first: the home almost always exists (every login but a user's first), and
	// MkdirAll walks and stats each component of the path on every login.
	r, err := l.root.OpenRoot(rel)
	if create && errors.Is(err, fs.ErrNotExist) {
		if err := l.root.MkdirAll(rel, 0o750); err != nil {
			return nil, fmt.Errorf("create home: %w", err)
		}
		r, err = l.root.OpenRoot(rel)
	}
	if err != nil {
		return nil, fmt.Errorf("open home: %w", err)
	}
	return r, nil
}

// acquire takes a reference on the home shared at rel, if any.
func (l *Local) acquire(rel string) *sharedHome {
	l.mu.Lock()
	defer l.mu.Unlock()
	h := l.homes[rel]
	if h != nil {
		h.refs++
	}
	return h
}

// share makes r, just opened on fi, the home shared at rel, unless a concurrent login
// has shared the same directory meanwhile: then r closes and that one is used. A
// different directory shared before stays open for its own sessions only.
func (l *Local) share(rel string, r *os.Root, fi fs.FileInfo) *sharedHome {
	l.mu.Lock()
	if h := l.homes[rel]; h != nil && os.SameFile(h.fi, fi) {
		h.refs++
		l.mu.Unlock()
		_ = r.Close()
		return h
	}
	h := &sharedHome{root: r, fi: fi, refs: 1}
	l.homes[rel] = h
	l.mu.Unlock()
	return h
}

// release drops one reference on h; the last one closes its root.
func (l *Local) release(rel string, h *sharedHome) error {
	l.mu.Lock()
	h.refs--
	last := h.refs == 0
	if last && l.homes[rel] == h {
		delete(l.homes, rel)
	}
	l.mu.Unlock()
	if last {
		return h.root.Close()
	}
	return nil
}

// LocalFS is one home on the local file system, as one session holds it.
type LocalFS struct {
	Root *os.Root

	home   *sharedHome // the shared root Close releases; nil: Close closes Root
	local  *Local
	rel    string
	closed atomic.Bool // Close releases once: a second would take another session's
}

// NewLocalFS wraps an open root as a home; Close closes it.
func NewLocalFS(r *os.Root) *LocalFS { return &LocalFS{Root: r} }

// Capabilities: a local file system does everything, zero-copy included.
func (l *LocalFS) Capabilities() Capabilities {
	return Capabilities{Append: true, Resume: true, Chmod: true, Mtime: true, RenameDir: true, ZeroCopy: true}
}

// Close ends this session's use of the home: the root closes with its last session.
func (l *LocalFS) Close() error {
	if l.closed.Swap(true) {
		return nil
	}
	if l.home == nil {
		return l.Root.Close()
	}
	return l.local.release(l.rel, l.home)
}

func (l *LocalFS) Stat(_ context.Context, name string) (fs.FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return l.Root.Stat(name)
}

func (l *LocalFS) Lstat(_ context.Context, name string) (fs.FileInfo, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	return l.Root.Lstat(name)
}

// List pages a directory, or lists the entry itself for a file, without upload temps.
func (l *LocalFS) List(ctx context.Context, name string) (Lister, error) {
	fi, err := l.Stat(ctx, name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return &sliceLister{page: []fs.FileInfo{fi}}, nil
	}
	f, err := l.Root.Open(name)
	if err != nil {
		return nil, err
	}
	return &localLister{f: f}, nil
}

// listPage is how many entries a listing holds at once.
const listPage = 1000

type localLister struct{ f *os.File }

func (ll *localLister) Next(context.Context) ([]fs.FileInfo, error) {
	for {
		entries, err := ll.f.ReadDir(listPage)
		infos := make([]fs.FileInfo, 0, len(entries))
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), UploadTempPrefix) {
				continue
			}
			if info, ierr := e.Info(); ierr == nil { // gone since: skip it
				infos = append(infos, info)
			}
		}
		if len(infos) > 0 || err != nil {
			return infos, err
		}
	}
}

func (ll *localLister) Close() error { return ll.f.Close() }

// sliceLister is a listing already in memory (one file's own entry).
type sliceLister struct{ page []fs.FileInfo }

func (s *sliceLister) Next(context.Context) ([]fs.FileInfo, error) {
	p := s.page
	s.page = nil
	if p == nil {
		return nil, io.EOF
	}
	return p, nil
}

func (s *sliceLister) Close() error { return nil }

// Open returns the *os.File itself, positioned at offset.
func (l *LocalFS) Open(_ context.Context, name string, offset int64) (io.ReadCloser, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	f, err := l.Root.Open(name)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = fmt.Errorf("%s: %w", name, ErrIsDir)
	}
	if err == nil && offset > 0 {
		_, err = f.Seek(offset, io.SeekStart)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (l *LocalFS) Remove(_ context.Context, name string) error {
	fi, err := l.Lstat(context.Background(), name)
	switch {
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s: %w", name, ErrIsDir)
	}
	return l.Root.Remove(name)
}

func (l *LocalFS) Mkdir(_ context.Context, name string) error {
	if err := checkName(name); err != nil {
		return err
	}
	return l.Root.Mkdir(name, 0o750)
}

func (l *LocalFS) Rmdir(_ context.Context, name string) error {
	fi, err := l.Lstat(context.Background(), name)
	switch {
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s: %w", name, ErrNotDir)
	}
	err = l.Root.Remove(name)
	if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("%s: %w: %w", name, ErrNotEmpty, err)
	}
	return err
}

func (l *LocalFS) Rename(_ context.Context, from, to string) error {
	if err := checkName(from); err != nil {
		return err
	}
	if err := checkName(to); err != nil {
		return err
	}
	return l.Root.Rename(from, to)
}

func (l *LocalFS) Chmod(_ context.Context, name string, mode fs.FileMode) error {
	if err := checkName(name); err != nil {
		return err
	}
	return l.Root.Chmod(name, mode)
}

func (l *LocalFS) Chtimes(_ context.Context, name string, mtime time.Time) error {
	if err := checkName(name); err != nil {
		return err
	}
	return l.Root.Chtimes(name, time.Time{}, mtime)
}

// Create opens the file an upload writes: a hidden temporary file renamed into
// place at Commit (Atomic), or the file itself, not truncated before bytes arrive.
func (l *LocalFS) Create(_ context.Context, name string, o CreateOptions) (Upload, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if name == "." {
		return nil, fmt.Errorf("%s: %w", name, ErrIsDir)
	}
	u := &localUpload{opts: o}
	var err error
	switch {
	case o.Append:
		u.file, err = OpenLocalFile(l.Root, name, false, os.O_WRONLY|os.O_CREATE|os.O_APPEND)
	case o.Offset > 0:
		if u.file, err = OpenLocalFile(l.Root, name, false, os.O_WRONLY); err == nil {
			if _, err = u.file.f.Seek(o.Offset, io.SeekStart); err != nil {
				u.file.f.Close()
			}
		}
	case o.Atomic:
		u.file, err = OpenLocalFile(l.Root, name, true, os.O_WRONLY)
	default:
		_, serr := l.Root.Lstat(name)
		u.created = errors.Is(serr, fs.ErrNotExist)
		u.file, err = OpenLocalFile(l.Root, name, false, os.O_WRONLY|os.O_CREATE)
	}
	if err != nil {
		return nil, err
	}
	return u, nil
}

// localUpload writes an *os.File; its ReadFrom reaches splice(2) from a TCP socket.
type localUpload struct {
	file    LocalFile // the atomic rule: temporary file, rename, removal
	opts    CreateOptions
	created bool // an in-place upload created the file
	n       int64
}

func (u *localUpload) Write(p []byte) (int, error) {
	n, err := u.file.f.Write(p)
	u.n += int64(n)
	return n, err
}

// ReadFrom is (*os.File).ReadFrom, so a *net.TCPConn (or an io.LimitedReader of one)
// is spliced into the file without passing through user space.
func (u *localUpload) ReadFrom(r io.Reader) (int64, error) {
	n, err := u.file.f.ReadFrom(r)
	u.n += n
	return n, err
}

func (u *localUpload) Written() int64 { return u.n }

// File is the file being written, for what only a local file has (Truncate, Stat).
func (u *localUpload) File() *os.File { return u.file.f }

// Commit ends the upload: an atomic one is renamed into place, an in-place one ends
// where the new bytes end (an append keeps its length).
func (u *localUpload) Commit() error {
	var err error
	if !u.file.Atomic() && !u.opts.Append {
		err = u.file.f.Truncate(u.opts.Offset + u.n)
	}
	if cerr := u.file.Commit(); err == nil {
		err = cerr
	}
	return err
}

// Abort removes an atomic upload's temporary file, and a file an in-place upload
// created before any byte arrived; in place, what arrived stays for a resume.
func (u *localUpload) Abort() error {
	err := u.file.Abort()
	if u.created && u.n == 0 {
		err = errors.Join(err, u.file.root.Remove(u.file.name))
	}
	return err
}

// TempPath is the hidden temporary file beside name that an atomic upload writes before
// it is renamed into place; listings skip UploadTempPrefix. Every front end's local
// atomic upload names its file this way.
func TempPath(name string) string {
	return path.Join(path.Dir(name), UploadTempPrefix+randomHex(8)+".part")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
