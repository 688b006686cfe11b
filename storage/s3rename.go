package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// maxCopyObject is the largest object one CopyObject copies; larger ones are copied
// in parts of copyPartSize.
const (
	maxCopyObject = 5 << 30
	copyPartSize  = 512 << 20
)

// Rename copies then deletes: a file by one server-side copy; a directory key by
// key, up to RenameDirMax objects (more: ErrTooLarge, nothing changed). The target
// must not be a directory; an existing file there is replaced, as rename(2) does.
func (h *S3FS) Rename(ctx context.Context, from, to string) error {
	fromKey, err := objectKey(h.home, from)
	if err != nil {
		return err
	}
	toKey, err := objectKey(h.home, to)
	if err != nil {
		return err
	}
	if from == "." || to == "." {
		return fmt.Errorf("rename the home itself: %w", fs.ErrPermission)
	}
	fi, err := h.Stat(ctx, from)
	if err != nil {
		return err
	}
	if from == to {
		return nil
	}
	if tfi, err := h.Stat(ctx, to); err == nil && (tfi.IsDir() || fi.IsDir()) {
		return fmt.Errorf("%s: %w", to, fs.ErrExist)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := h.checkParent(ctx, to); err != nil {
		return err
	}
	if !fi.IsDir() {
		if err := h.copyKey(ctx, fromKey, toKey, fi.Size()); err != nil {
			return err
		}
		return h.deleteKey(ctx, fromKey)
	}
	if strings.HasPrefix(toKey+"/", fromKey+"/") {
		return fmt.Errorf("rename %s into itself: %w", from, ErrBadName)
	}
	return h.renameDir(ctx, fromKey+"/", toKey+"/")
}

// renameDir copies every key under from to the same place under to, then deletes
// the old keys. Listed first, in full, to refuse a too large directory before any copy.
func (h *S3FS) renameDir(ctx context.Context, from, to string) error {
	var objs []types.Object
	if err := h.walk(ctx, from, h.s.cfg.RenameDirMax, func(o types.Object) { objs = append(objs, o) }); err != nil {
		if errors.Is(err, ErrTooLarge) {
			return fmt.Errorf("directory holds more than DJFTPD_S3_RENAME_DIR_MAX=%d objects: %w", h.s.cfg.RenameDirMax, ErrTooLarge)
		}
		return err
	}
	for _, o := range objs {
		k := aws.ToString(o.Key)
		if strings.HasSuffix(k, "/") { // a directory marker: write a new one
			if err := h.putMarker(ctx, to+strings.TrimPrefix(k, from)); err != nil {
				return err
			}
			continue
		}
		if err := h.copyKey(ctx, k, to+strings.TrimPrefix(k, from), aws.ToInt64(o.Size)); err != nil {
			return err
		}
	}
	for start := 0; start < len(objs); start += 1000 {
		batch := objs[start:min(start+1000, len(objs))]
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, o := range batch {
			ids[i] = types.ObjectIdentifier{Key: o.Key}
		}
		var out *s3.DeleteObjectsOutput
		err := h.call("DeleteObjects", func() (err error) {
			out, err = h.s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: h.bucket(),
				Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)}})
			return err
		})
		if err == nil && len(out.Errors) > 0 {
			e := out.Errors[0]
			err = &s3Error{op: "DeleteObjects", code: aws.ToString(e.Code), class: ErrUnavailable, err: errors.New(aws.ToString(e.Message))}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// copyKey is a server-side copy: CopyObject, or UploadPartCopy parts above 5 GiB.
func (h *S3FS) copyKey(ctx context.Context, from, to string, size int64) error {
	src := copySource(h.s.loc.Bucket, from)
	if size <= maxCopyObject {
		return h.call("CopyObject", func() error {
			_, err := h.s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: h.bucket(), Key: &to, CopySource: &src})
			return err
		})
	}
	var out *s3.CreateMultipartUploadOutput
	if err := h.call("CreateMultipartUpload", func() (err error) {
		out, err = h.s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: h.bucket(), Key: &to})
		return err
	}); err != nil {
		return err
	}
	u := &s3Upload{h: h, key: to, ctx: ctx, cancel: func() {}, id: out.UploadId}
	for off, num := int64(0), int32(1); off < size; off, num = off+copyPartSize, num+1 {
		rng := fmt.Sprintf("bytes=%d-%d", off, min(off+copyPartSize, size)-1)
		err := h.call("UploadPartCopy", func() error {
			p, err := h.s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: h.bucket(), Key: &to,
				UploadId: out.UploadId, PartNumber: aws.Int32(num), CopySource: &src, CopySourceRange: &rng})
			if err == nil {
				u.parts = append(u.parts, types.CompletedPart{PartNumber: aws.Int32(num), ETag: p.CopyPartResult.ETag})
			}
			return err
		})
		if err != nil {
			return errors.Join(err, u.Abort())
		}
	}
	return h.call("CompleteMultipartUpload", func() error {
		_, err := h.s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: h.bucket(), Key: &to,
			UploadId: out.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: u.parts}})
		return err
	})
}
