// Package storage is where users' files live: one small interface over a local
// directory tree (os.Root) and over S3-compatible object storage. Front ends (FTP,
// SFTP) resolve a client's path to a clean name relative to the home and ask the
// home's FS; what a backend cannot do is said by Capabilities, never assumed.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"path"
	"strings"
	"time"
)

// Errors a front end maps to replies. Backends wrap them (errors.Is), together with
// fs.ErrNotExist, fs.ErrExist and fs.ErrPermission.
var (
	// ErrUnsupported: the backend cannot do this at all (S3: chmod, mtime, append).
	ErrUnsupported = fmt.Errorf("not supported by this storage: %w", errors.ErrUnsupported)
	// ErrUnavailable: the storage service failed or could not be reached; retrying
	// later may work (FTP 451).
	ErrUnavailable = errors.New("storage unavailable")
	// ErrBadName: the name cannot be stored (dot-dot, empty element, control
	// character, backslash on S3, too long).
	ErrBadName = errors.New("name not allowed")
	// ErrNotEmpty: Rmdir of a directory that holds something.
	ErrNotEmpty = errors.New("directory not empty")
	// ErrTooLarge: an operation over a bound (S3: renaming a directory of more than
	// DJFTPD_S3_RENAME_DIR_MAX objects, an upload past 10,000 parts).
	ErrTooLarge = errors.New("too many objects or bytes for this storage")
	// ErrIsDir and ErrNotDir: a file operation on a directory and the reverse.
	ErrIsDir  = errors.New("is a directory")
	ErrNotDir = errors.New("not a directory")
)

// Capabilities says what a backend can do, so front ends answer truthfully (FEAT,
// permission letters, 504/550 replies).
type Capabilities struct {
	Append    bool // an upload may add to the end of an existing file (APPE)
	Resume    bool // an upload may write from an offset of an existing file (REST+STOR)
	Chmod     bool // Chmod works (SITE CHMOD)
	Mtime     bool // Chtimes works (MFMT)
	RenameDir bool // Rename works on directories (bounded on S3: see ErrTooLarge)
	ZeroCopy  bool // Open returns an *os.File, Create an io.ReaderFrom reaching splice
}

// Storage holds every home.
type Storage interface {
	// Home opens the home at an absolute slash path of the storage's namespace (for
	// s3, "/alice" is keys PREFIX/alice/...), creating it when create is set.
	Home(ctx context.Context, home string, create bool) (FS, error)
	// String names the storage as DJFTPD_STORAGE does ("local", "s3://bucket/prefix").
	String() string
	// Capabilities are those of every home, as FS.Capabilities.
	Capabilities() Capabilities
	Close() error
}

// FS is one user's home. Names are slash paths relative to it, as path.Clean makes
// them ("." is the home itself); anything else is refused with ErrBadName.
type FS interface {
	Capabilities() Capabilities
	Stat(ctx context.Context, name string) (fs.FileInfo, error)
	Lstat(ctx context.Context, name string) (fs.FileInfo, error)
	// List reads a directory page by page, so a huge one is never all in memory.
	List(ctx context.Context, name string) (Lister, error)
	// Open reads a file from offset. The local backend returns an *os.File, so a
	// copy to a TCP connection reaches sendfile(2).
	Open(ctx context.Context, name string, offset int64) (io.ReadCloser, error)
	// Create starts an upload; nothing changes until Write (in place) or Commit.
	Create(ctx context.Context, name string, opts CreateOptions) (Upload, error)
	Remove(ctx context.Context, name string) error
	Mkdir(ctx context.Context, name string) error
	// Rmdir removes an empty directory; ErrNotEmpty otherwise.
	Rmdir(ctx context.Context, name string) error
	Rename(ctx context.Context, from, to string) error
	Chmod(ctx context.Context, name string, mode fs.FileMode) error
	Chtimes(ctx context.Context, name string, mtime time.Time) error
	Close() error
}

// Lister pages through a directory; Next returns io.EOF after the last page.
type Lister interface {
	Next(ctx context.Context) ([]fs.FileInfo, error)
	Close() error
}

// CreateOptions says how an upload writes.
type CreateOptions struct {
	// Atomic: the file appears (or is replaced) only at Commit. Always so on S3.
	Atomic bool
	// Append writes after the existing bytes; Offset > 0 writes from there, keeping
	// what is before. Both need Capabilities().Append / Resume.
	Append bool
	Offset int64
}

// Upload is a file being written. Commit makes it whole and visible; Abort leaves
// nothing of an atomic upload (no object, no pending multipart upload on S3), and
// of an in-place one what was written (what a client resumes from).
type Upload interface {
	io.Writer
	Written() int64
	Commit() error
	Abort() error
}

// ReadAll collects every page of a listing; for small directories and tests only.
func ReadAll(ctx context.Context, l Lister) ([]fs.FileInfo, error) {
	defer l.Close()
	var all []fs.FileInfo
	for {
		page, err := l.Next(ctx)
		all = append(all, page...)
		if errors.Is(err, io.EOF) {
			return all, nil
		}
		if err != nil {
			return all, err
		}
	}
}

// Location is a parsed DJFTPD_STORAGE value.
type Location struct {
	Kind   string // "local" or "s3"
	Bucket string // s3 only
	Prefix string // s3 only: no leading or trailing slash, may be empty
}

// ParseLocation reads "local" or "s3://BUCKET[/PREFIX]".
func ParseLocation(s string) (Location, error) {
	if s == "" || s == "local" {
		return Location{Kind: "local"}, nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" {
		return Location{}, fmt.Errorf("want local or s3://BUCKET[/PREFIX], got %q", s)
	}
	prefix := strings.TrimSuffix(strings.TrimPrefix(u.Path, "/"), "/")
	if prefix != "" {
		if err := checkName(prefix); err != nil || strings.ContainsAny(prefix, "\\") {
			return Location{}, fmt.Errorf("prefix %q of %q: %w", prefix, s, ErrBadName)
		}
	}
	if !validBucket(u.Host) {
		return Location{}, fmt.Errorf("bucket %q of %q: want 3-63 lowercase letters, digits, dots and hyphens", u.Host, s)
	}
	return Location{Kind: "s3", Bucket: u.Host, Prefix: prefix}, nil
}

func (l Location) String() string {
	if l.Kind != "s3" {
		return "local"
	}
	return "s3://" + path.Join(l.Bucket, l.Prefix)
}

func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for _, r := range b {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}
