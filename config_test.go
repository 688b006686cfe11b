package main

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kelseyhightower/envconfig"
)

const goodSecret = "0123456789abcdef0123456789abcdef"

// setEnv clears every DJFTPD_ variable, then sets a valid minimal configuration plus
// the overrides ("" unsets).
func setEnv(t *testing.T, overrides map[string]string) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, envPrefix+"_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	env := map[string]string{
		"DJFTPD_DJANGO_URL": "http://127.0.0.1:8000/ftp/",
		"DJFTPD_SECRET":     goodSecret,
		"DJFTPD_HOME_ROOT":  "/srv/ftp",
	}
	for k, v := range overrides {
		env[k] = v
	}
	for k, v := range env {
		if v == "" {
			continue
		}
		t.Setenv(k, v)
	}
}

func TestLoadConfigDefaults(t *testing.T) {
	setEnv(t, nil)
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "0.0.0.0:2121" || c.PassivePorts != (portRange{50000, 50099}) || c.UploadMode != "atomic" {
		t.Fatalf("defaults = %+v", c)
	}
	f := c.ftp()
	if f.PassivePortMin != 50000 || !f.AtomicUploads || !f.CreateHome {
		t.Fatalf("ftp config = %+v", f)
	}
	if !c.cache().PerIP {
		t.Fatal("DJFTPD_CACHE_PER_IP does not default to true")
	}
	setEnv(t, map[string]string{"DJFTPD_CACHE_PER_IP": "false"})
	if c, err := loadConfig(); err != nil || c.cache().PerIP {
		t.Fatalf("DJFTPD_CACHE_PER_IP=false: per IP %v, err %v", c.cache().PerIP, err)
	}
}

// TestLoadConfigErrors: each bad value fails with one line naming the variable.
func TestLoadConfigErrors(t *testing.T) {
	secretFile := t.TempDir() + "/secret"
	if err := os.WriteFile(secretFile, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no django url", map[string]string{"DJFTPD_DJANGO_URL": ""}, "DJFTPD_DJANGO_URL"},
		{"relative django url", map[string]string{"DJFTPD_DJANGO_URL": "localhost:8000"}, "DJFTPD_DJANGO_URL"},
		{"no secret", map[string]string{"DJFTPD_SECRET": ""}, "DJFTPD_SECRET"},
		{"short secret", map[string]string{"DJFTPD_SECRET": "tooshort"}, "DJFTPD_SECRET: must be at least 32 bytes, got 8"},
		{"short secret file", map[string]string{"DJFTPD_SECRET": "", "DJFTPD_SECRET_FILE": secretFile}, "DJFTPD_SECRET: must be at least 32 bytes, got 5"},
		{"missing secret file", map[string]string{"DJFTPD_SECRET_FILE": "/nonexistent/secret"}, "DJFTPD_SECRET_FILE"},
		{"no home root", map[string]string{"DJFTPD_HOME_ROOT": ""}, "DJFTPD_HOME_ROOT"},
		{"relative home root", map[string]string{"DJFTPD_HOME_ROOT": "ftp"}, "DJFTPD_HOME_ROOT"},
		{"passive reversed", map[string]string{"DJFTPD_PASSIVE_PORTS": "30100-30000"}, "DJFTPD_PASSIVE_PORTS"},
		{"passive garbage", map[string]string{"DJFTPD_PASSIVE_PORTS": "many"}, "DJFTPD_PASSIVE_PORTS"},
		{"passive too high", map[string]string{"DJFTPD_PASSIVE_PORTS": "65000-70000"}, "DJFTPD_PASSIVE_PORTS"},
		{"public host name", map[string]string{"DJFTPD_PUBLIC_HOST": "ftp.example.com"}, "DJFTPD_PUBLIC_HOST"},
		{"listen", map[string]string{"DJFTPD_LISTEN": "2121"}, "DJFTPD_LISTEN"},
		{"upload mode", map[string]string{"DJFTPD_UPLOAD_MODE": "fast"}, "DJFTPD_UPLOAD_MODE"},
		{"duration", map[string]string{"DJFTPD_AUTH_TIMEOUT": "5 seconds"}, "DJFTPD_AUTH_TIMEOUT"},
		{"zero idle", map[string]string{"DJFTPD_IDLE_TIMEOUT": "0s"}, "DJFTPD_IDLE_TIMEOUT"},
		{"log format", map[string]string{"DJFTPD_LOG_FORMAT": "xml"}, "DJFTPD_LOG_FORMAT"},
		{"cache per ip", map[string]string{"DJFTPD_CACHE_PER_IP": "sometimes"}, "DJFTPD_CACHE_PER_IP"},
		{"line length", map[string]string{"DJFTPD_MAX_LINE_LENGTH": "10"}, "DJFTPD_MAX_LINE_LENGTH"},
		{"proxy without trusted", map[string]string{"DJFTPD_PROXY_PROTOCOL": "true"}, "DJFTPD_PROXY_TRUSTED: required"},
		{"proxy trusted empty", map[string]string{"DJFTPD_PROXY_PROTOCOL": "true", "DJFTPD_PROXY_TRUSTED": " , "}, "DJFTPD_PROXY_TRUSTED: required"},
		{"proxy trusted name", map[string]string{"DJFTPD_PROXY_PROTOCOL": "true", "DJFTPD_PROXY_TRUSTED": "lb.example.com"}, "DJFTPD_PROXY_TRUSTED"},
		{"proxy trusted bad cidr", map[string]string{"DJFTPD_PROXY_TRUSTED": "10.0.0.0/33"}, "DJFTPD_PROXY_TRUSTED"},
		{"proxy trusted zone", map[string]string{"DJFTPD_PROXY_TRUSTED": "fe80::1%eth0"}, "DJFTPD_PROXY_TRUSTED"},
		{"zero tls handshake", map[string]string{"DJFTPD_TLS_HANDSHAKE_TIMEOUT": "0s"}, "DJFTPD_TLS_HANDSHAKE_TIMEOUT"},
		{"negative passive per ip", map[string]string{"DJFTPD_MAX_PASSIVE_PER_IP": "-1"}, "DJFTPD_MAX_PASSIVE_PER_IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			_, err := loadConfig()
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q does not name %s on one line", msg, tt.want)
			}
			if strings.Contains(msg, goodSecret) {
				t.Fatalf("error %q shows the secret", msg)
			}
		})
	}
}

// TestProxyTrustedParsed: CIDRs and bare IPs of both families, spaces allowed.
func TestProxyTrustedParsed(t *testing.T) {
	setEnv(t, map[string]string{"DJFTPD_PROXY_PROTOCOL": "true", "DJFTPD_PROXY_TRUSTED": "10.0.0.0/8, 192.0.2.7,2001:db8::/32 ,::1,::ffff:192.0.2.9"})
	c, err := loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range c.ftp().ProxyTrusted {
		got = append(got, p.String())
	}
	want := "10.0.0.0/8 192.0.2.7/32 2001:db8::/32 ::1/128 192.0.2.9/32"
	if strings.Join(got, " ") != want || c.ftp().TLSHandshakeTimeout != 10*time.Second {
		t.Fatalf("trusted = %v, handshake timeout %v", got, c.ftp().TLSHandshakeTimeout)
	}
}

func TestRunExitsTwoWithoutProxyTrusted(t *testing.T) {
	setEnv(t, map[string]string{"DJFTPD_PROXY_PROTOCOL": "true"})
	if code := run(nil); code != exitConfig {
		t.Fatalf("exit code %d, want %d", code, exitConfig)
	}
}

// TestUnprefixedVariablesIgnored: envconfig falls back to the bare name for fields
// with an explicit envconfig tag, so a container's LOG_LEVEL or SECRET would leak in.
func TestUnprefixedVariablesIgnored(t *testing.T) {
	setEnv(t, map[string]string{"DJFTPD_SECRET": ""})
	t.Setenv("SECRET", goodSecret)
	t.Setenv("LISTEN", "127.0.0.1:1")
	if _, err := loadConfig(); err == nil {
		t.Fatal("SECRET without the DJFTPD_ prefix was read")
	}
}

func TestRunExitsTwoOnBadConfig(t *testing.T) {
	setEnv(t, map[string]string{"DJFTPD_SECRET": "short"})
	if code := run(nil); code != exitConfig {
		t.Fatalf("exit code %d, want %d", code, exitConfig)
	}
	if code := run([]string{"--bogus"}); code != exitConfig {
		t.Fatalf("exit code %d for an unknown argument, want %d", code, exitConfig)
	}
}

// TestREADMEConfigTable keeps README's variable table equal to the code's.
func TestREADMEConfigTable(t *testing.T) {
	var c config
	var buf bytes.Buffer
	const row = "{{range .}}| `{{usage_key .}}` | {{if usage_required .}}(required){{else}}{{with usage_default .}}`{{.}}`{{end}}{{end}} | {{usage_description .}} |\n{{end}}"
	if err := envconfig.Usagef(envPrefix, &c, &buf, row); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	head, rest, _ := strings.Cut(string(readme), "<!-- config-table:start -->\n")
	table, tail, _ := strings.Cut(rest, "<!-- config-table:end -->")
	want := strings.ReplaceAll("| variable | default | meaning |\n| --- | --- | --- |\n"+buf.String(), " |  |", " | |")
	if os.Getenv("UPDATE_README") == "1" {
		updated := head + "<!-- config-table:start -->\n" + want + "<!-- config-table:end -->" + tail
		if err := os.WriteFile("README.md", []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if table != want {
		t.Fatalf("README configuration table is out of date (UPDATE_README=1 go test -run TestREADMEConfigTable . rewrites it); it should read:\n%s", want)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestEveryVariableValidated: every variable has a row here, and each row's invalid
// value fails loadConfig (exit 2) with an error naming that variable, whichever
// package's Config the value ends up in. A row with no value is a variable every
// value of which loads (a failure to use it names it at start).
func TestEveryVariableValidated(t *testing.T) {
	explicit := map[string]string{"DJFTPD_TLS_MODE": "explicit", "DJFTPD_TLS_CERT": "/c.pem", "DJFTPD_TLS_KEY": "/k.pem"}
	bad := map[string]map[string]string{
		"DJANGO_URL": {"DJFTPD_DJANGO_URL": "ftp://x/"}, "SECRET": {"DJFTPD_SECRET": "short"},
		"SECRET_FILE": {"DJFTPD_SECRET_FILE": "/nonexistent"}, "HOME_ROOT": {"DJFTPD_HOME_ROOT": "rel"},
		"LISTEN": {"DJFTPD_LISTEN": "2121"}, "PASSIVE_PORTS": {"DJFTPD_PASSIVE_PORTS": "x"},
		"PUBLIC_HOST": {"DJFTPD_PUBLIC_HOST": "name"}, "OPS_LISTEN": {"DJFTPD_OPS_LISTEN": "x"},
		"TLS_MODE":        {"DJFTPD_TLS_MODE": "maybe"},
		"TLS_CERT":        with(explicit, "DJFTPD_TLS_CERT", ""),
		"TLS_KEY":         with(explicit, "DJFTPD_TLS_KEY", ""),
		"IMPLICIT_LISTEN": {"DJFTPD_IMPLICIT_LISTEN": "x"}, "CREATE_HOME": {"DJFTPD_CREATE_HOME": "maybe"},
		"UPLOAD_MODE": {"DJFTPD_UPLOAD_MODE": "fast"}, "ASCII_CONVERSION": {"DJFTPD_ASCII_CONVERSION": "maybe"},
		"AUTH_TIMEOUT": {"DJFTPD_AUTH_TIMEOUT": "-1s"}, "CACHE_TTL": {"DJFTPD_CACHE_TTL": "x"},
		"CACHE_NEGATIVE_TTL": {"DJFTPD_CACHE_NEGATIVE_TTL": "x"}, "CACHE_STALE_TTL": {"DJFTPD_CACHE_STALE_TTL": "x"},
		"CACHE_PER_IP": {"DJFTPD_CACHE_PER_IP": "x"}, "SPOOL_DIR": {"DJFTPD_SPOOL_DIR": "rel"},
		"SPOOL_MAX_BYTES": {"DJFTPD_SPOOL_MAX_BYTES": "1"}, "LOGIN_TIMEOUT": {"DJFTPD_LOGIN_TIMEOUT": "-1s"},
		"IDLE_TIMEOUT": {"DJFTPD_IDLE_TIMEOUT": "0s"}, "DATA_TIMEOUT": {"DJFTPD_DATA_TIMEOUT": "-1s"},
		"MAX_LINE_LENGTH": {"DJFTPD_MAX_LINE_LENGTH": "10"}, "FAILED_LOGIN_DELAY": {"DJFTPD_FAILED_LOGIN_DELAY": "-1s"},
		"MAX_LOGIN_ATTEMPTS": {"DJFTPD_MAX_LOGIN_ATTEMPTS": "0"}, "MAX_CONNECTIONS": {"DJFTPD_MAX_CONNECTIONS": "-1"},
		"MAX_CONNECTIONS_PER_IP": {"DJFTPD_MAX_CONNECTIONS_PER_IP": "-1"}, "MAX_PASSIVE_PER_IP": {"DJFTPD_MAX_PASSIVE_PER_IP": "-1"},
		"BAN_THRESHOLD": {"DJFTPD_BAN_THRESHOLD": "-1"}, "BAN_WINDOW": {"DJFTPD_BAN_WINDOW": "0s"},
		"BAN_TIME": {"DJFTPD_BAN_TIME": "-1s"}, "PROXY_PROTOCOL": {"DJFTPD_PROXY_PROTOCOL": "x"},
		"PROXY_TRUSTED": {"DJFTPD_PROXY_TRUSTED": "x"}, "TLS_HANDSHAKE_TIMEOUT": {"DJFTPD_TLS_HANDSHAKE_TIMEOUT": "0s"},
		"SHUTDOWN_GRACE": {"DJFTPD_SHUTDOWN_GRACE": "-1s"}, "LOG_FORMAT": {"DJFTPD_LOG_FORMAT": "xml"},
		"LOG_LEVEL": {"DJFTPD_LOG_LEVEL": "loud"}, "XFERLOG": nil,
		"SFTP_LISTEN":        {"DJFTPD_SFTP_LISTEN": "2222", "DJFTPD_STATE_DIR": "/tmp"},
		"SFTP_HOST_KEYS":     {"DJFTPD_SFTP_LISTEN": "127.0.0.1:2222", "DJFTPD_SFTP_HOST_KEYS": "/nonexistent/key"},
		"SFTP_PASSWORD_AUTH": {"DJFTPD_SFTP_PASSWORD_AUTH": "maybe"}, "SFTP_PUBLICKEY_AUTH": {"DJFTPD_SFTP_PUBLICKEY_AUTH": "maybe"},
		"STATE_DIR": {"DJFTPD_STATE_DIR": "rel"},
		"STORAGE":   {"DJFTPD_STORAGE": "gs://media"}, "S3_PATH_STYLE": {"DJFTPD_S3_PATH_STYLE": "maybe"},
		"S3_PART_SIZE": {"DJFTPD_S3_PART_SIZE": "1"}, "S3_UPLOAD_CONCURRENCY": {"DJFTPD_S3_UPLOAD_CONCURRENCY": "0"},
		"S3_RENAME_DIR_MAX": {"DJFTPD_S3_RENAME_DIR_MAX": "0"},
	}
	var c config
	var buf bytes.Buffer
	if err := envconfig.Usagef(envPrefix, &c, &buf, "{{range .}}{{usage_key .}}\n{{end}}"); err != nil {
		t.Fatal(err)
	}
	for _, key := range strings.Fields(buf.String()) {
		name := strings.TrimPrefix(key, envPrefix+"_")
		env, ok := bad[name]
		if !ok {
			t.Errorf("%s has no row: give it an invalid value, or nil if every value loads", key)
			continue
		}
		if env == nil {
			continue
		}
		setEnv(t, env)
		_, err := loadConfig()
		if err == nil || !strings.HasPrefix(err.Error(), key+": ") && !strings.Contains(err.Error(), key+" ") {
			t.Errorf("%v: error %v, want one naming %s", env, err, key)
			continue // run would serve
		}
		if code := run(nil); code != exitConfig {
			t.Errorf("%v: exit %d, want %d", env, code, exitConfig)
		}
	}
}

// with is m plus key=value.
func with(m map[string]string, key, value string) map[string]string {
	out := map[string]string{key: value}
	for k, v := range m {
		if k != key {
			out[k] = v
		}
	}
	return out
}

// TestPublicHostIPv6: an IPv6 node address (Kubernetes status.hostIP) is accepted.
func TestPublicHostIPv6(t *testing.T) {
	setEnv(t, map[string]string{"DJFTPD_PUBLIC_HOST": "2001:db8::1"})
	c, err := loadConfig()
	if err != nil {
		t.Fatalf("DJFTPD_PUBLIC_HOST=2001:db8::1: %v", err)
	}
	if got := c.ftp().PublicHost.String(); got != "2001:db8::1" {
		t.Fatalf("public host = %s", got)
	}
}
