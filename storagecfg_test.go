package main

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/djftpd/djftpd/storage/storagetest"
)

// TestStorageConfigErrors: a bad storage setting fails at load, naming the variable.
func TestStorageConfigErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"DJFTPD_STORAGE": "gs://media"}, "DJFTPD_STORAGE"},
		{map[string]string{"DJFTPD_STORAGE": "s3://media/../x"}, "DJFTPD_STORAGE"},
		{map[string]string{"DJFTPD_STORAGE": "s3://Media"}, "DJFTPD_STORAGE"},
		{map[string]string{"DJFTPD_S3_PART_SIZE": "1048576"}, "DJFTPD_S3_PART_SIZE"},
		{map[string]string{"DJFTPD_S3_PART_SIZE": "lots"}, "DJFTPD_S3_PART_SIZE"},
		{map[string]string{"DJFTPD_S3_UPLOAD_CONCURRENCY": "0"}, "DJFTPD_S3_UPLOAD_CONCURRENCY"},
		{map[string]string{"DJFTPD_S3_UPLOAD_CONCURRENCY": "65"}, "DJFTPD_S3_UPLOAD_CONCURRENCY"},
		{map[string]string{"DJFTPD_S3_RENAME_DIR_MAX": "0"}, "DJFTPD_S3_RENAME_DIR_MAX"},
	}
	for _, tt := range tests {
		setEnv(t, tt.env)
		_, err := loadConfig()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one naming %s", tt.env, err, tt.want)
		}
	}
	setEnv(t, map[string]string{"DJFTPD_STORAGE": "s3://media/ftp"})
	c, err := loadConfig()
	if err != nil || c.s3().PartSize != 8<<20 || c.s3().Concurrency != 4 || c.s3().RenameDirMax != 1000 || c.S3PathStyle {
		t.Fatalf("s3 defaults: %+v, %v", c.s3(), err)
	}
}

// TestStartChecksS3: a missing bucket, refused credentials and an unreachable
// endpoint stop djftpd before it listens, with exit 2 and the variable to fix.
func TestStartChecksS3(t *testing.T) {
	gw := storagetest.Start(t)
	tests := []struct {
		name    string
		storage string
		env     map[string]string
		want    string
	}{
		{"missing bucket", "s3://no-such-bucket/ftp", nil, "bucket \"no-such-bucket\" does not exist"},
		{"bad secret", "s3://" + storagetest.Bucket, map[string]string{"AWS_SECRET_ACCESS_KEY": "wrong-secret-wrong-secret"}, "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"},
		{"no region", "s3://" + storagetest.Bucket, map[string]string{"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}, "AWS_REGION"},
		{"unreachable", "s3://" + storagetest.Bucket, map[string]string{"AWS_ENDPOINT_URL_S3": "http://" + freeAddr(t)}, "AWS_ENDPOINT_URL_S3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gw.Env(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			setEnv(t, map[string]string{"DJFTPD_STORAGE": tt.storage, "DJFTPD_S3_PATH_STYLE": "true",
				"DJFTPD_HOME_ROOT": "/", "DJFTPD_LISTEN": "127.0.0.1:0", "DJFTPD_OPS_LISTEN": "127.0.0.1:0"})
			cfg, err := loadConfig()
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			err = serve(ctx, cfg, discardLogger(), func(net.Addr, net.Addr) { cancel() })
			var ce *configError
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "DJFTPD_STORAGE") {
				t.Fatalf("serve: %v; want a configuration error naming %s", err, tt.want)
			}
			if tt.name == "missing bucket" {
				if code := run(nil); code != exitConfig {
					t.Fatalf("exit code %d, want %d", code, exitConfig)
				}
			}
		})
	}
}
