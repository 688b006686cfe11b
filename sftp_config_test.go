package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestSFTPConfig: SFTP is off by default; when on, each bad value fails naming its variable.
func TestSFTPConfig(t *testing.T) {
	setEnv(t, nil)
	c, err := loadConfig()
	if err != nil || c.SFTPListen != "" || !c.SFTPPasswordAuth || !c.SFTPPublicKeyAuth {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	state := t.TempDir()
	on := func(kv ...string) map[string]string {
		m := map[string]string{"DJFTPD_SFTP_LISTEN": "127.0.0.1:2222", "DJFTPD_STATE_DIR": state}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	setEnv(t, on())
	if _, err := loadConfig(); err != nil {
		t.Fatalf("valid SFTP config: %v", err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"listen", on("DJFTPD_SFTP_LISTEN", "2222"), "DJFTPD_SFTP_LISTEN"},
		{"no host key and no state dir", on("DJFTPD_STATE_DIR", ""), "DJFTPD_STATE_DIR: required"},
		{"relative state dir", on("DJFTPD_STATE_DIR", "state"), "DJFTPD_STATE_DIR"},
		{"missing host key file", on("DJFTPD_SFTP_HOST_KEYS", "/nonexistent/key"), "DJFTPD_SFTP_HOST_KEYS"},
		{"no auth", on("DJFTPD_SFTP_PASSWORD_AUTH", "false", "DJFTPD_SFTP_PUBLICKEY_AUTH", "false"), "DJFTPD_SFTP_PASSWORD_AUTH"},
		{"password auth garbage", on("DJFTPD_SFTP_PASSWORD_AUTH", "maybe"), "DJFTPD_SFTP_PASSWORD_AUTH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			_, err := loadConfig()
			if err == nil || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("error %v does not name %s on one line", err, tt.want)
			}
		})
	}
}

// TestPrintHostKeys: --print-host-keys generates the key once and prints the same
// fingerprint every time, needing only the host key variables.
func TestPrintHostKeys(t *testing.T) {
	setEnv(t, map[string]string{"DJFTPD_DJANGO_URL": "", "DJFTPD_SECRET": "", "DJFTPD_STATE_DIR": filepath.Join(t.TempDir(), "state")})
	var first, second bytes.Buffer
	if code := printHostKeys(&first); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if code := printHostKeys(&second); code != exitOK {
		t.Fatalf("exit %d", code)
	}
	if !strings.HasPrefix(first.String(), "ssh-ed25519 SHA256:") || first.String() != second.String() {
		t.Fatalf("printed %q then %q", first.String(), second.String())
	}
	setEnv(t, map[string]string{"DJFTPD_SFTP_HOST_KEYS": "/nonexistent/key"})
	if code := printHostKeys(&bytes.Buffer{}); code != exitConfig {
		t.Fatalf("missing key file: exit %d", code)
	}
}
