// Package storagetest starts a real S3-compatible server for tests: versitygw, the
// repository's pinned tool (make tools), serving a temporary directory on 127.0.0.1.
package storagetest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the pinned versitygw release; the Makefile's tools target builds it.
const Version = "v1.8.0"

// SkipEnv, set to 1, lets tests skip when the binary is missing; without it a
// missing binary fails them, so make test never silently drops the S3 tests.
const SkipEnv = "DJFTPD_SKIP_S3"

// Test credentials and bucket of the server.
const (
	AccessKey = "djftpdtestaccess"
	SecretKey = "djftpdtestsecret0123456789"
	Region    = "us-east-1"
	Bucket    = "djftpd-test"
)

// Binary is $DJFTPD_VERSITYGW, else where make tools puts it:
// $(go env GOCACHE)/../djftpd-tools/versitygw-VERSION/versitygw.
func Binary() string {
	if p := os.Getenv("DJFTPD_VERSITYGW"); p != "" {
		return p
	}
	out, err := exec.Command("go", "env", "GOCACHE").Output()
	if err != nil {
		return ""
	}
	return filepath.Join(filepath.Dir(strings.TrimSpace(string(out))), "djftpd-tools", "versitygw-"+Version, "versitygw")
}

// Server is one running versitygw.
type Server struct {
	Endpoint string // http://127.0.0.1:PORT
	Dir      string // the directory it serves; buckets are its subdirectories
	addr     string
	bin      string
	cmd      *exec.Cmd
	exited   chan struct{}
	t        testing.TB
}

// Start runs versitygw on a free port over a temporary directory, creates Bucket,
// and stops the server when the test ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary()
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv(SkipEnv) == "1" {
			t.Skipf("versitygw %s not found at %q and %s=1: S3 tests skipped", Version, bin, SkipEnv)
		}
		t.Fatalf("versitygw %s not found at %q: run make tools (or set %s=1 to skip S3 tests)", Version, bin, SkipEnv)
	}
	s := &Server{Dir: t.TempDir(), bin: bin, t: t}
	for attempt := 0; ; attempt++ {
		s.addr = freeAddr(t)
		err := s.Restart()
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatalf("start versitygw: %v", err)
		}
	}
	s.Endpoint = "http://" + s.addr
	t.Cleanup(s.Stop)
	if _, err := s.Client().CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(Bucket)}); err != nil {
		t.Fatalf("CreateBucket: %v", err)
	}
	return s
}

func freeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Restart starts the server (again) on its address, waiting until it accepts.
func (s *Server) Restart() error {
	cmd := exec.Command(s.bin, "--port", s.addr, "posix", s.Dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
	out, err := os.CreateTemp(s.t.TempDir(), "versitygw-*.log")
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); out.Close(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			log, _ := os.ReadFile(out.Name())
			return fmt.Errorf("versitygw exited: %s", log)
		default:
		}
		if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("versitygw did not listen on %s within 15s", s.addr)
}

// Stop ends the server (SIGTERM, then SIGKILL after 5s) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Env points the AWS SDK's standard variables at the server, for the rest of the
// test, and isolates it from the machine's own AWS files.
func (s *Server) Env(t testing.TB) {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": AccessKey, "AWS_SECRET_ACCESS_KEY": SecretKey, "AWS_REGION": Region,
		"AWS_ENDPOINT_URL_S3": s.Endpoint, "AWS_EC2_METADATA_DISABLED": "true",
		"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_SESSION_TOKEN": "", "AWS_PROFILE": "", "AWS_ENDPOINT_URL": "",
	} {
		t.Setenv(k, v)
	}
}

// Client is an SDK client of the server, for checks made beside djftpd.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
}
