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
		{"public host v6", map[string]string{"DJFTPD_PUBLIC_HOST": "2001:db8::1"}, "DJFTPD_PUBLIC_HOST"},
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
