package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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

// runS3Get streams bucket/key to io.Discard with the transfer manager's GetObject (parts
// fetched concurrently, delivered in order, as an FTP RETR must deliver them).
func runS3Get(addr, access, secret, bucket, key string) (any, error) {
	start := time.Now()
	out, err := transfermanager.New(s3Client(addr, access, secret)).GetObject(context.Background(),
		&transfermanager.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get %s: %w", key, err)
	}
	n, err := io.Copy(io.Discard, out.Body)
	if err != nil {
		return nil, fmt.Errorf("read %s after %d bytes: %w", key, n, err)
	}
	secs := time.Since(start).Seconds()
	return map[string]any{"bytes": n, "seconds": secs, "mbps": float64(n) / secs / 1e6}, nil
}
