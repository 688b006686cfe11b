package storage

import (
	"errors"
	"os"
)

// LocalFile is an upload to a local home as both front ends write it: FTP's STOR
// sequentially (localUpload), SFTP at offsets and with reads on read-write handles. The
// atomic rule lives here once: an atomic upload writes a hidden temporary file beside
// the target (TempPath, created exclusively, mode 0640), renamed over the target at
// Commit and removed at Abort or when the rename fails; otherwise the target itself is
// written in place.
type LocalFile struct {
	root *os.Root
	name string
	tmp  string // the temporary file of an atomic upload; "" in place
	f    *os.File
}

// OpenLocalFile opens an upload of name in root. flag holds the access mode (os.O_WRONLY
// or os.O_RDWR) and, in place, the open's own flags (O_CREATE, O_TRUNC, O_APPEND); an
// atomic upload ignores the others, its temporary file being always new. It returns
// the LocalFile itself so a caller can keep it in its own struct without an allocation.
func OpenLocalFile(root *os.Root, name string, atomic bool, flag int) (LocalFile, error) {
	u := LocalFile{root: root, name: name}
	var err error
	if atomic {
		u.tmp = TempPath(name)
		u.f, err = root.OpenFile(u.tmp, flag&(os.O_WRONLY|os.O_RDWR)|os.O_CREATE|os.O_EXCL, 0o640)
	} else {
		u.f, err = root.OpenFile(name, flag, 0o640)
	}
	return u, err
}

// File is the open file: its ReadFrom reaches splice(2), and Stat, Truncate and Seek are
// there for what each front end needs.
func (u *LocalFile) File() *os.File { return u.f }

// Atomic reports whether the upload writes a temporary file renamed at Commit.
func (u *LocalFile) Atomic() bool { return u.tmp != "" }

// Temp is the temporary file's name in the root; "" in place.
func (u *LocalFile) Temp() string { return u.tmp }

// WriteAt writes at an offset, in any order (SFTP clients pipeline their writes).
func (u *LocalFile) WriteAt(p []byte, off int64) (int, error) { return u.f.WriteAt(p, off) }

// ReadAt reads what the upload holds so far (an SFTP read-write handle).
func (u *LocalFile) ReadAt(p []byte, off int64) (int, error) { return u.f.ReadAt(p, off) }

// Commit closes the file and renames an atomic upload over the target; the temporary
// file is removed when either fails, so nothing half-written is left visible or hidden.
func (u *LocalFile) Commit() error {
	err := u.f.Close()
	if u.tmp == "" {
		return err
	}
	if err == nil {
		err = u.root.Rename(u.tmp, u.name)
	}
	if err != nil {
		_ = u.root.Remove(u.tmp)
	}
	return err
}

// Abort closes the file and removes an atomic upload's temporary file: the target is
// untouched. In place, what was written stays (what a client resumes from).
func (u *LocalFile) Abort() error {
	err := u.f.Close()
	if u.tmp != "" {
		err = errors.Join(err, u.root.Remove(u.tmp))
	}
	return err
}
