package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3 defaults; DJFTPD_S3_* override them.
const (
	DefaultPartSize     = 8 << 20
	DefaultConcurrency  = 4
	DefaultRenameDirMax = 1000
	MinPartSize         = 5 << 20 // S3's smallest part but the last
	MaxPartSize         = 5 << 30
	maxParts            = 10000
	// s3ReadTimeout cuts a connection that delivers no byte this long, so a stalled
	// service fails the command (451) instead of hanging it.
	s3ReadTimeout = 30 * time.Second
	// s3MaxBackoff bounds the wait between retries of one request.
	s3MaxBackoff = time.Second
)

// S3Config is what djftpd adds to the AWS SDK's own configuration (credentials,
// region, endpoint come from its standard variables and files).
type S3Config struct {
	PathStyle    bool   // DJFTPD_S3_PATH_STYLE: bucket in the path (most self-hosted servers)
	PartSize     int64  // DJFTPD_S3_PART_SIZE: bytes per multipart part
	Concurrency  int    // DJFTPD_S3_UPLOAD_CONCURRENCY: parts in flight per upload
	RenameDirMax int    // DJFTPD_S3_RENAME_DIR_MAX: most objects a directory rename copies
	HomeRoot     string // DJFTPD_HOME_ROOT: every home is inside it
	Metrics      *Metrics
}

// S3 keeps homes as key prefixes of one bucket.
type S3 struct {
	client *s3.Client
	loc    Location
	cfg    S3Config
}

// NewS3 builds the client from the SDK's default chain. It makes no request: Check does.
func NewS3(ctx context.Context, loc Location, c S3Config) (*S3, error) {
	if c.PartSize == 0 {
		c.PartSize = DefaultPartSize
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.RenameDirMax == 0 {
		c.RenameDirMax = DefaultRenameDirMax
	}
	httpClient := awshttp.NewBuildableClient().
		WithReadTimeout(s3ReadTimeout).
		WithDialerOptions(func(d *net.Dialer) { d.Timeout = 10 * time.Second }).
		WithTransportOptions(func(t *http.Transport) { t.ResponseHeaderTimeout = s3ReadTimeout })
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(httpClient))
	if err != nil {
		return nil, fmt.Errorf("AWS configuration (AWS_* variables, ~/.aws files): %w", err)
	}
	if awsCfg.Region == "" {
		return nil, errors.New("AWS_REGION: missing; the S3 client needs a region (us-east-1 suits most self-hosted servers)")
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		o.UsePathStyle = c.PathStyle
		// Retries as configured (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE), but never waiting
		// long between them: a client waits for the reply of each FTP command.
		o.Retryer = retry.AddWithMaxBackoffDelay(o.Retryer, s3MaxBackoff)
	})
	return &S3{client: client, loc: loc, cfg: c}, nil
}

// Client is the SDK client, for tests and tools that prepare a bucket.
func (s *S3) Client() *s3.Client { return s.client }

func (s *S3) String() string { return s.loc.String() }

// Capabilities of object storage: see S3FS.Capabilities.
func (s *S3) Capabilities() Capabilities { return (*S3FS)(nil).Capabilities() }

func (s *S3) Close() error { return nil }

// Check makes one cheap call (HeadBucket), so a wrong bucket, refused credentials or
// an unreachable endpoint stop djftpd at start; the error names the variable to fix.
func (s *S3) Check(ctx context.Context) error {
	start := time.Now()
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.loc.Bucket)})
	s.cfg.Metrics.observe("HeadBucket", start, mapErr(err))
	if err == nil {
		return nil
	}
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch status {
	case 0:
		return fmt.Errorf("AWS_ENDPOINT_URL_S3: S3 endpoint unreachable: %w", err)
	case http.StatusNotFound:
		return fmt.Errorf("bucket %q does not exist: %w", s.loc.Bucket, err)
	case http.StatusForbidden, http.StatusUnauthorized, http.StatusBadRequest:
		return fmt.Errorf("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: credentials refused for bucket %q: %w", s.loc.Bucket, err)
	case http.StatusMovedPermanently:
		return fmt.Errorf("AWS_REGION: bucket %q is in another region: %w", s.loc.Bucket, err)
	}
	return fmt.Errorf("bucket %q: %w", s.loc.Bucket, err)
}

// Home returns the home's view of the bucket. Directories are virtual on S3, so a
// home exists as soon as anything is in it; create only skips the check.
func (s *S3) Home(ctx context.Context, home string, create bool) (FS, error) {
	prefix, err := homePrefix(s.loc.Prefix, s.cfg.HomeRoot, home)
	if err != nil {
		return nil, err
	}
	h := &S3FS{s: s, home: prefix}
	if !create && prefix != "" {
		n, err := h.countUnder(ctx, prefix, 1)
		switch {
		case err != nil:
			return nil, fmt.Errorf("open home %s: %w", home, err)
		case n == 0:
			return nil, fmt.Errorf("open home %s: %w", home, fs.ErrNotExist)
		}
	}
	return h, nil
}

// s3Error is a failed S3 call: what a front end logs (operation and S3 error code),
// and the class it answers by (fs.ErrNotExist, ErrUnavailable, ...).
type s3Error struct {
	op, code string
	class    error
	err      error
}

func (e *s3Error) Error() string {
	return fmt.Sprintf("s3 %s: %s: %v", e.op, e.code, e.err)
}

func (e *s3Error) Unwrap() []error { return []error{e.class, e.err} }

// mapErr classes an SDK error: missing key → fs.ErrNotExist; anything else the
// service or the network did → ErrUnavailable. Context ends pass through as they are.
func mapErr(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	e := &s3Error{code: "network", class: ErrUnavailable, err: err}
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		e.op = oe.Operation()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		e.code = ae.ErrorCode()
	}
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	switch {
	case e.code == "NoSuchKey" || e.code == "NotFound" || e.code == "NoSuchUpload" || status == http.StatusNotFound && e.code != "NoSuchBucket":
		e.class = fs.ErrNotExist
	case e.code == "AccessDenied" || status == http.StatusForbidden:
		e.class = errors.Join(ErrUnavailable, fs.ErrPermission)
	}
	return e
}

// copySource is the x-amz-copy-source of a key: bucket/key, each segment escaped.
func copySource(bucket, key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return bucket + "/" + strings.Join(parts, "/")
}
