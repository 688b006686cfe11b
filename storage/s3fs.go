package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3FS is one home in a bucket: keys under a prefix. Directories are common
// prefixes, plus the zero-byte "dir/" markers Mkdir writes so empty ones show.
type S3FS struct {
	s    *S3
	home string // "PREFIX/home/" or "" for the bucket's root
}

// Capabilities: objects are written whole and have no mode or settable mtime.
func (h *S3FS) Capabilities() Capabilities { return Capabilities{RenameDir: true} }

func (h *S3FS) Close() error { return nil }

// call runs one S3 request, classes its error and records it.
func (h *S3FS) call(op string, fn func() error) error {
	start := time.Now()
	err := mapErr(fn())
	h.s.cfg.Metrics.observe(op, start, err)
	return err
}

func (h *S3FS) bucket() *string { return aws.String(h.s.loc.Bucket) }

// dirPrefix is the prefix of what a directory key holds.
func dirPrefix(key string) string {
	if key == "" || strings.HasSuffix(key, "/") {
		return key
	}
	return key + "/"
}

func (h *S3FS) Lstat(ctx context.Context, name string) (fs.FileInfo, error) { return h.Stat(ctx, name) }

// Stat is a HeadObject of the key, then, for a directory, a one-key listing of its
// prefix. The home itself always exists.
func (h *S3FS) Stat(ctx context.Context, name string) (fs.FileInfo, error) {
	key, err := objectKey(h.home, name)
	if err != nil {
		return nil, err
	}
	if name != "." {
		var out *s3.HeadObjectOutput
		err = h.call("HeadObject", func() (err error) {
			out, err = h.s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: h.bucket(), Key: &key})
			return err
		})
		if err == nil {
			return fileInfo(path.Base(name), aws.ToInt64(out.ContentLength), aws.ToTime(out.LastModified)), nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if name == "." { // the home is there, even empty
		return dirInfo("."), nil
	}
	n, err := h.countUnder(ctx, dirPrefix(key), 1)
	switch {
	case err != nil:
		return nil, err
	case n == 0:
		return nil, fmt.Errorf("%s: %w", name, fs.ErrNotExist)
	}
	return dirInfo(path.Base(name)), nil
}

// countUnder counts the keys under prefix, stopping past limit.
func (h *S3FS) countUnder(ctx context.Context, prefix string, limit int) (int, error) {
	n := 0
	err := h.walk(ctx, prefix, limit, func(types.Object) { n++ })
	return n, err
}

// walk calls fn for every key under prefix, at all depths, failing with ErrTooLarge
// past limit keys.
func (h *S3FS) walk(ctx context.Context, prefix string, limit int, fn func(types.Object)) error {
	p := s3.NewListObjectsV2Paginator(h.s.client, &s3.ListObjectsV2Input{
		Bucket: h.bucket(), Prefix: &prefix, MaxKeys: aws.Int32(int32(min(limit+1, listPage))),
	})
	n := 0
	for p.HasMorePages() {
		var out *s3.ListObjectsV2Output
		if err := h.call("ListObjectsV2", func() (err error) { out, err = p.NextPage(ctx); return err }); err != nil {
			return err
		}
		for _, o := range out.Contents {
			if n++; n > limit {
				if limit == 1 {
					return nil // an existence check: enough seen
				}
				return fmt.Errorf("more than %d objects under %q: %w", limit, prefix, ErrTooLarge)
			}
			fn(o)
		}
		if limit == 1 && n > 0 {
			return nil
		}
	}
	return nil
}

// List pages through a directory with a delimited ListObjectsV2, one page of at most
// 1000 keys in memory at a time.
func (h *S3FS) List(ctx context.Context, name string) (Lister, error) {
	fi, err := h.Stat(ctx, name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return &sliceLister{page: []fs.FileInfo{fi}}, nil
	}
	key, _ := objectKey(h.home, name)
	prefix := dirPrefix(key)
	return &s3Lister{h: h, prefix: prefix, p: s3.NewListObjectsV2Paginator(h.s.client, &s3.ListObjectsV2Input{
		Bucket: h.bucket(), Prefix: &prefix, Delimiter: aws.String("/"), MaxKeys: aws.Int32(listPage),
	})}, nil
}

type s3Lister struct {
	h      *S3FS
	prefix string
	p      *s3.ListObjectsV2Paginator
}

func (l *s3Lister) Next(ctx context.Context) ([]fs.FileInfo, error) {
	for l.p.HasMorePages() {
		var out *s3.ListObjectsV2Output
		if err := l.h.call("ListObjectsV2", func() (err error) { out, err = l.p.NextPage(ctx); return err }); err != nil {
			return nil, err
		}
		infos := make([]fs.FileInfo, 0, len(out.CommonPrefixes)+len(out.Contents))
		for _, cp := range out.CommonPrefixes {
			name := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), l.prefix), "/")
			if name != "" && !strings.Contains(name, "/") {
				infos = append(infos, dirInfo(name))
			}
		}
		for _, o := range out.Contents {
			name := strings.TrimPrefix(aws.ToString(o.Key), l.prefix)
			if name == "" || strings.Contains(name, "/") { // the directory's own marker
				continue
			}
			infos = append(infos, fileInfo(name, aws.ToInt64(o.Size), aws.ToTime(o.LastModified)))
		}
		if len(infos) > 0 {
			return infos, nil
		}
	}
	return nil, io.EOF
}

func (l *s3Lister) Close() error { return nil }

// Open is a streamed GetObject, from offset by a Range request.
func (h *S3FS) Open(ctx context.Context, name string, offset int64) (io.ReadCloser, error) {
	key, err := objectKey(h.home, name)
	if err != nil {
		return nil, err
	}
	if name == "." {
		return nil, fmt.Errorf("%s: %w", name, ErrIsDir)
	}
	in := &s3.GetObjectInput{Bucket: h.bucket(), Key: &key}
	if offset > 0 {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-", offset))
	}
	var out *s3.GetObjectOutput
	err = h.call("GetObject", func() (err error) { out, err = h.s.client.GetObject(ctx, in); return err })
	var se *s3Error
	if offset > 0 && errors.As(err, &se) && se.code == "InvalidRange" {
		// A Range starting at the end: nothing left to send, if the file is that long.
		if fi, serr := h.Stat(ctx, name); serr == nil && !fi.IsDir() && fi.Size() == offset {
			return io.NopCloser(bytes.NewReader(nil)), nil
		}
	}
	if err != nil {
		return nil, err
	}
	return &s3Body{rc: out.Body, op: "GetObject"}, nil
}

// s3Body classes a failure while the object streams as ErrUnavailable (451).
type s3Body struct {
	rc io.ReadCloser
	op string
}

func (b *s3Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = &s3Error{op: b.op, code: "stream", class: ErrUnavailable, err: err}
	}
	return n, err
}

func (b *s3Body) Close() error { return b.rc.Close() }

// Remove deletes a file (DeleteObject says nothing of a missing key: Stat first).
func (h *S3FS) Remove(ctx context.Context, name string) error {
	fi, err := h.Stat(ctx, name)
	switch {
	case err != nil:
		return err
	case fi.IsDir():
		return fmt.Errorf("%s: %w", name, ErrIsDir)
	}
	key, _ := objectKey(h.home, name)
	return h.deleteKey(ctx, key)
}

func (h *S3FS) deleteKey(ctx context.Context, key string) error {
	return h.call("DeleteObject", func() error {
		_, err := h.s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: h.bucket(), Key: &key})
		return err
	})
}

// Mkdir writes the zero-byte "dir/" marker, in an existing parent directory.
func (h *S3FS) Mkdir(ctx context.Context, name string) error {
	key, err := objectKey(h.home, name)
	if err != nil {
		return err
	}
	if err := h.checkFree(ctx, name); err != nil {
		return err
	}
	return h.putMarker(ctx, dirPrefix(key))
}

// putMarker writes a zero-byte "dir/" object, so an empty directory shows.
func (h *S3FS) putMarker(ctx context.Context, marker string) error {
	return h.call("PutObject", func() error {
		_, err := h.s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: h.bucket(), Key: &marker, Body: bytes.NewReader(nil), ContentLength: aws.Int64(0)})
		return err
	})
}

// checkFree is nil when name does not exist and its parent is a directory.
func (h *S3FS) checkFree(ctx context.Context, name string) error {
	if name == "." {
		return fmt.Errorf("%s: %w", name, fs.ErrExist)
	}
	if _, err := h.Stat(ctx, name); err == nil {
		return fmt.Errorf("%s: %w", name, fs.ErrExist)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return h.checkParent(ctx, name)
}

func (h *S3FS) checkParent(ctx context.Context, name string) error {
	dir := path.Dir(name)
	if dir == "." {
		return nil
	}
	fi, err := h.Stat(ctx, dir)
	if err == nil && !fi.IsDir() {
		err = fmt.Errorf("%s: %w", dir, ErrNotDir)
	}
	return err
}

// Rmdir deletes a directory's marker when nothing else is under it.
func (h *S3FS) Rmdir(ctx context.Context, name string) error {
	fi, err := h.Stat(ctx, name)
	switch {
	case err != nil:
		return err
	case !fi.IsDir():
		return fmt.Errorf("%s: %w", name, ErrNotDir)
	case name == ".":
		return fmt.Errorf("the home itself: %w", fs.ErrPermission)
	}
	key, _ := objectKey(h.home, name)
	marker := dirPrefix(key)
	var others bool
	err = h.walk(ctx, marker, 2, func(o types.Object) { others = others || aws.ToString(o.Key) != marker })
	if errors.Is(err, ErrTooLarge) {
		others, err = true, nil
	}
	switch {
	case err != nil:
		return err
	case others:
		return fmt.Errorf("%s: %w", name, ErrNotEmpty)
	}
	return h.deleteKey(ctx, marker)
}

// Chmod: objects have no mode.
func (h *S3FS) Chmod(context.Context, string, fs.FileMode) error {
	return fmt.Errorf("chmod: %w", ErrUnsupported)
}

// Chtimes: an object's time is when it was written.
func (h *S3FS) Chtimes(context.Context, string, time.Time) error {
	return fmt.Errorf("set modification time: %w", ErrUnsupported)
}

// s3Info is a FileInfo of a key or a common prefix.
type s3Info struct {
	name  string
	size  int64
	mtime time.Time
	dir   bool
}

func fileInfo(name string, size int64, mtime time.Time) fs.FileInfo {
	return &s3Info{name: name, size: size, mtime: mtime}
}

// dirInfo: a prefix has no time of its own; the Unix epoch says "unknown".
func dirInfo(name string) fs.FileInfo { return &s3Info{name: name, dir: true, mtime: time.Unix(0, 0)} }

func (i *s3Info) Name() string       { return i.name }
func (i *s3Info) Size() int64        { return i.size }
func (i *s3Info) ModTime() time.Time { return i.mtime }
func (i *s3Info) IsDir() bool        { return i.dir }
func (i *s3Info) Sys() any           { return nil }
func (i *s3Info) Mode() fs.FileMode {
	if i.dir {
		return fs.ModeDir | 0o750
	}
	return 0o640
}

// Usage sums the sizes of every object in the home, reading at most maxKeys keys;
// complete is false when it stopped there (the figure is then a lower bound).
func (h *S3FS) Usage(ctx context.Context, maxKeys int) (total int64, complete bool, err error) {
	err = h.walk(ctx, h.home, maxKeys, func(o types.Object) { total += aws.ToInt64(o.Size) })
	if errors.Is(err, ErrTooLarge) {
		return total, false, nil
	}
	return total, err == nil, err
}
