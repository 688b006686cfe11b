package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// The direct S3 figures: the same transfer djftpd makes against the same versitygw, done by
// the AWS SDK for Go's transfer manager (default part size and concurrency) in this process.
// -addr is the S3 endpoint, -user/-pass the access key and secret.

func s3Client(addr, access, secret string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String("http://" + addr),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(access, secret, ""),
	})
}

// runS3MakeBucket creates bucket (an existing one is fine).
func runS3MakeBucket(addr, access, secret, bucket string) (any, error) {
	_, err := s3Client(addr, access, secret).CreateBucket(context.Background(),
		&s3.CreateBucketInput{Bucket: aws.String(bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return nil, fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	return map[string]any{"bucket": bucket}, nil
}

// runS3Put uploads src to bucket/key with the transfer manager; keep=false deletes it after.
func runS3Put(addr, access, secret, bucket, key, src string, keep bool) (any, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("open source: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat source: %w", err)
	}
	cl := s3Client(addr, access, secret)
	ctx := context.Background()
	start := time.Now()
	_, err = transfermanager.New(cl).UploadObject(ctx, &transfermanager.UploadObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: in})
	if err != nil {
		return nil, fmt.Errorf("upload %s: %w", key, err)
	}
	secs := time.Since(start).Seconds()
	if !keep {
		if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)}); err != nil {
			return nil, fmt.Errorf("delete %s: %w", key, err)
		}
	}
	n := st.Size()
	return map[string]any{"bytes": n, "seconds": secs, "mbps": float64(n) / secs / 1e6}, nil
}

// runS3Get downloads bucket/key with the transfer manager's DownloadObject (parts fetched
// concurrently into a WriterAt that discards them). Its GetObject (in-order io.Reader) was
// measured at ~50 MB/s against versitygw in either part or range mode, so the faster one is
// the reference.
func runS3Get(addr, access, secret, bucket, key string) (any, error) {
	start := time.Now()
	var w discardAt
	out, err := transfermanager.New(s3Client(addr, access, secret)).DownloadObject(context.Background(),
		&transfermanager.DownloadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), WriterAt: &w})
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", key, err)
	}
	n := aws.ToInt64(out.ContentLength)
	secs := time.Since(start).Seconds()
	return map[string]any{"bytes": n, "written": w.n.Load(), "seconds": secs, "mbps": float64(n) / secs / 1e6}, nil
}

// discardAt is an io.WriterAt that counts and drops what it is given.
type discardAt struct{ n atomic.Int64 }

func (d *discardAt) WriteAt(p []byte, _ int64) (int, error) {
	d.n.Add(int64(len(p)))
	return len(p), nil
}
