package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/djftpd/djftpd/access"
	"github.com/djftpd/djftpd/cache"
	"github.com/djftpd/djftpd/djangoclient"
	"github.com/djftpd/djftpd/ftpdriver"
	"github.com/djftpd/djftpd/storage"
)

// envPrefix is the prefix of every environment variable djftpd reads.
const envPrefix = "DJFTPD"

// config is the sidecar's whole configuration, read from DJFTPD_* variables. It is
// converted into each package's own Config, so no package imports envconfig.
type config struct {
	DjangoURL           string        `split_words:"true" required:"true" desc:"URL of the djftpd app in Django, e.g. http://127.0.0.1:8000/ftp/"`
	Secret              string        `split_words:"true" desc:"Shared HMAC secret, at least 32 bytes (this or DJFTPD_SECRET_FILE is required)"`
	SecretFile          string        `split_words:"true" desc:"File holding the shared secret; a trailing newline is ignored"`
	HomeRoot            string        `split_words:"true" required:"true" desc:"Absolute directory every home Django returns must be inside"`
	Listen              string        `split_words:"true" default:"0.0.0.0:2121" desc:"FTP control listen address"`
	PassivePorts        portRange     `split_words:"true" default:"50000-50099" desc:"Passive data port range, inclusive (outside the Kubernetes NodePort range 30000-32767)"`
	PublicHost          string        `split_words:"true" desc:"Address announced in PASV replies; set it behind NAT or in Kubernetes. An IPv6 address (status.hostIP on an IPv6 node) is accepted: PASV then answers 425 and clients use EPSV, which announces no address"`
	OpsListen           string        `split_words:"true" default:"127.0.0.1:9121" desc:"HTTP listen address for /healthz and /readyz"`
	TLSMode             tlsMode       `split_words:"true" default:"off" desc:"FTPS: off, explicit (AUTH TLS offered), required (TLS before login and PROT P for data) or implicit"`
	TLSCert             string        `split_words:"true" desc:"PEM certificate (chain) file for FTPS; reloaded on SIGHUP"`
	TLSKey              string        `split_words:"true" desc:"PEM private key file for FTPS; reloaded on SIGHUP"`
	ImplicitListen      string        `split_words:"true" default:"0.0.0.0:2990" desc:"Implicit FTPS listen address, used when DJFTPD_TLS_MODE=implicit"`
	SFTPListen          string        `envconfig:"SFTP_LISTEN" desc:"SFTP (SSH) listen address such as 0.0.0.0:2222; empty: no SFTP"`
	SFTPHostKeys        []string      `envconfig:"SFTP_HOST_KEYS" desc:"Comma-separated SSH host private key files (ed25519, ecdsa or RSA; OpenSSH or PEM); empty: an ed25519 key generated once into DJFTPD_STATE_DIR and reused"`
	SFTPPasswordAuth    bool          `envconfig:"SFTP_PASSWORD_AUTH" default:"true" desc:"Accept Django passwords over SFTP"`
	SFTPPublicKeyAuth   bool          `envconfig:"SFTP_PUBLICKEY_AUTH" default:"true" desc:"Accept the SSH keys registered for a user in Django over SFTP"`
	StateDir            string        `split_words:"true" desc:"Absolute directory of state kept across restarts: the generated SFTP host key (ssh_host_ed25519_key, 0600)"`
	CreateHome          bool          `split_words:"true" default:"true" desc:"Create a missing home directory (mode 0750) at login"`
	UploadMode          uploadMode    `split_words:"true" default:"atomic" desc:"atomic: STOR writes a hidden temporary file renamed on success; standard: in place"`
	Storage             storeLoc      `split_words:"true" default:"local" desc:"Where homes live: local (directories under DJFTPD_HOME_ROOT) or s3://BUCKET[/PREFIX] (a home /alice is keys PREFIX/alice/...; credentials, region and endpoint from the AWS SDK's standard AWS_* variables)"`
	S3PathStyle         bool          `envconfig:"S3_PATH_STYLE" default:"false" desc:"With s3: address the bucket in the URL path, as most self-hosted S3 servers need"`
	S3PartSize          int64         `envconfig:"S3_PART_SIZE" default:"8388608" desc:"With s3: bytes per multipart upload part (5 MiB to 5 GiB); an upload holds at most part size x (concurrency+1) in memory"`
	S3UploadConcurrency int           `envconfig:"S3_UPLOAD_CONCURRENCY" default:"4" desc:"With s3: parts of one upload sent at once (1-64)"`
	S3RenameDirMax      int           `envconfig:"S3_RENAME_DIR_MAX" default:"1000" desc:"With s3: most objects a directory rename copies; larger directories get 550"`
	ASCIIConversion     bool          `envconfig:"ASCII_CONVERSION" default:"true" desc:"TYPE A converts line ends (CRLF on the wire, LF on disk) as RFC 959 says; false sends files unchanged in both types"`
	AuthTimeout         time.Duration `split_words:"true" default:"5s" desc:"Time budget of one login's call to Django, retries included"`
	CacheTTL            time.Duration `split_words:"true" default:"60s" desc:"How long a successful login is cached when Django sends no ttl"`
	CacheNegativeTTL    time.Duration `split_words:"true" default:"5s" desc:"How long a refused username+password pair is cached"`
	CacheStaleTTL       time.Duration `split_words:"true" default:"1h" desc:"How long past its TTL a cached login is still used while Django is unreachable (0 = never)"`
	CachePerIP          bool          `split_words:"true" default:"true" desc:"Cache logins per client address, so Django's IP-based decisions (lockouts, allow-lists) apply to each new address; false: one cached login serves every address"`
	SpoolDir            string        `split_words:"true" desc:"Directory of the event spool, the on-disk log every event goes through until Django acknowledges it; file events are fsync'd there before the final reply, so they survive a crash. Empty keeps events in memory only (lost on a crash)"`
	SpoolMaxBytes       int64         `split_words:"true" default:"67108864" desc:"Largest size of the event spool in bytes; when full the oldest events are dropped and counted"`
	LoginTimeout        time.Duration `split_words:"true" default:"60s" desc:"Close a connection that has not logged in this long after connecting"`
	IdleTimeout         time.Duration `split_words:"true" default:"5m" desc:"Close a control connection idle this long (never during a transfer)"`
	DataTimeout         time.Duration `split_words:"true" default:"30s" desc:"How long to wait for a data connection to open; an unused passive port closes and a transfer moving no byte is cut (426) after it"`
	MaxLineLength       int           `split_words:"true" default:"4096" desc:"Longest control line in bytes; longer gets 500 and the connection closes"`
	FailedLoginDelay    time.Duration `split_words:"true" default:"1s" desc:"Delay before answering a failed login"`
	MaxLoginAttempts    int           `split_words:"true" default:"3" desc:"Failed logins allowed per connection before it is closed"`
	MaxConnections      int           `split_words:"true" default:"500" desc:"Most open connections, FTP control and SFTP together; more get 421 (FTP) or are closed (SFTP) (0 = no limit)"`
	MaxConnectionsPerIP int           `split_words:"true" default:"20" desc:"Most open connections from one client address, FTP control and SFTP together (0 = no limit)"`
	MaxPassivePerIP     int           `split_words:"true" default:"8" desc:"Most open passive listeners (PASV/EPSV not yet used) of one client address across its sessions; more get 425 (0 = no limit)"`
	BanThreshold        int           `split_words:"true" default:"10" desc:"Failed logins from one address within DJFTPD_BAN_WINDOW that ban it (0 = never ban)"`
	BanWindow           time.Duration `split_words:"true" default:"10m" desc:"Window in which failed logins count toward a ban"`
	BanTime             time.Duration `split_words:"true" default:"15m" desc:"How long a banned address gets 421 at connect"`
	ProxyProtocol       bool          `split_words:"true" default:"false" desc:"Expect a PROXY protocol v1/v2 header on each FTP control and SFTP connection (behind a TCP load balancer); needs DJFTPD_PROXY_TRUSTED"`
	ProxyTrusted        prefixList    `split_words:"true" desc:"The balancer's addresses: comma-separated CIDRs or IPs (IPv4/IPv6) whose PROXY headers are read; with DJFTPD_PROXY_PROTOCOL=true every other peer is closed before the greeting"`
	TLSHandshakeTimeout time.Duration `split_words:"true" default:"10s" desc:"Bound on a control connection's TLS handshake (implicit FTPS, AUTH TLS) and on the 421 written to a connection refused at connect"`
	ShutdownGrace       time.Duration `split_words:"true" default:"30s" desc:"On SIGTERM, how long running transfers may finish"`
	LogFormat           logFormat     `split_words:"true" default:"text" desc:"Log format: text or json"`
	LogLevel            slog.Level    `split_words:"true" default:"info" desc:"Log level: debug, info, warn or error"`
	Xferlog             string        `split_words:"true" desc:"File to append one line per transfer to, in the classic xferlog format; empty for none"`
}

// portRange is an inclusive "min-max" port range.
type portRange struct{ Min, Max int }

// Decode implements envconfig.Decoder.
func (p *portRange) Decode(s string) error {
	lo, hi, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		hi = lo // one port
	}
	minPort, err1 := strconv.Atoi(strings.TrimSpace(lo))
	maxPort, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || minPort < 1 || maxPort > 65535 || minPort > maxPort {
		return fmt.Errorf("want a port range like 50000-50099, got %q", s)
	}
	p.Min, p.Max = minPort, maxPort
	return nil
}

// prefixList is a comma-separated list of CIDRs; a bare IP is a /32 or /128.
type prefixList []netip.Prefix

// Decode implements envconfig.Decoder.
func (l *prefixList) Decode(s string) error {
	var out prefixList
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if !strings.Contains(f, "/") {
			var a netip.Addr
			if a, err = netip.ParseAddr(f); err == nil && a.Zone() == "" {
				p = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen())
			} else if err == nil {
				err = errors.New("zone")
			}
		}
		if err != nil || p.Addr().Is4In6() {
			return fmt.Errorf("want comma-separated CIDRs or IPs such as 10.0.0.0/8,2001:db8::1, got %q", f)
		}
		out = append(out, p.Masked())
	}
	*l = out
	return nil
}

// uploadMode is "atomic" or "standard".
type uploadMode string

// Decode implements envconfig.Decoder.
func (m *uploadMode) Decode(s string) error { return oneOf(m, s, "atomic", "standard") }

// storeLoc is a DJFTPD_STORAGE value.
type storeLoc storage.Location

// Decode implements envconfig.Decoder.
func (l *storeLoc) Decode(s string) error {
	loc, err := storage.ParseLocation(s)
	*l = storeLoc(loc)
	return err
}

// tlsMode is one of ftpdriver's TLS modes.
type tlsMode ftpdriver.TLSMode

// Decode implements envconfig.Decoder.
func (m *tlsMode) Decode(s string) error {
	return oneOf(m, s, tlsMode(ftpdriver.TLSOff), tlsMode(ftpdriver.TLSExplicit),
		tlsMode(ftpdriver.TLSRequired), tlsMode(ftpdriver.TLSImplicit))
}

// logFormat is "text" or "json".
type logFormat string

// Decode implements envconfig.Decoder.
func (f *logFormat) Decode(s string) error { return oneOf(f, s, "text", "json") }

// oneOf sets *dst to s when s is one of allowed, else says what is allowed
// ("want a, b or c").
func oneOf[T ~string](dst *T, s string, allowed ...T) error {
	if slices.Contains(allowed, T(s)) {
		*dst = T(s)
		return nil
	}
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	last := len(names) - 1
	return fmt.Errorf("want %s or %s, got %q", strings.Join(names[:last], ", "), names[last], s)
}

// configError names the variable at fault; main prints it on one line and exits 2.
type configError struct {
	key string
	msg string
}

func (e *configError) Error() string { return envPrefix + "_" + e.key + ": " + e.msg }

// loadConfig reads and validates the environment.
func loadConfig() (config, error) {
	var c config
	if err := envconfig.Process(envPrefix, &c); err != nil {
		var pe *envconfig.ParseError
		if errors.As(err, &pe) {
			return c, &configError{key: strings.TrimPrefix(pe.KeyName, envPrefix+"_"), msg: pe.Err.Error()}
		}
		return c, err // "required key DJFTPD_X missing value"
	}
	return c, c.validate()
}

// validate checks the configuration, naming the variable of a field at fault: the secret
// (its file, then djangoclient's Config), then what only main uses (listen addresses,
// certificate files, the spool, the shutdown grace), then ftpdriver's Config.
func (c *config) validate() error {
	if err := c.readSecret(); err != nil {
		return err
	}
	// The secret first: a placeholder secret is the mistake that matters most.
	if err := c.djangoClient().Validate(); err != nil {
		return fieldError(err)
	}
	if err := c.validateOwn(); err != nil {
		return err
	}
	if err := c.ftp().Validate(); err != nil {
		return fieldError(err)
	}
	return nil
}

// readSecret loads DJFTPD_SECRET_FILE into Secret and requires one of the two.
func (c *config) readSecret() error {
	if c.SecretFile != "" {
		b, err := os.ReadFile(c.SecretFile)
		if err != nil {
			return &configError{"SECRET_FILE", fmt.Sprintf("cannot read: %v", errors.Unwrap(err))}
		}
		c.Secret = strings.TrimRight(string(b), "\r\n")
	}
	if c.Secret == "" {
		return &configError{"SECRET", "missing: set DJFTPD_SECRET or DJFTPD_SECRET_FILE to the secret in Django's DJFTPD[\"SECRET\"]"}
	}
	return nil
}

// validateOwn checks the variables no package's Config validates.
func (c *config) validateOwn() error {
	if c.TLSMode != tlsMode(ftpdriver.TLSOff) {
		if c.TLSCert == "" {
			return &configError{"TLS_CERT", "required when DJFTPD_TLS_MODE is not off"}
		}
		if c.TLSKey == "" {
			return &configError{"TLS_KEY", "required when DJFTPD_TLS_MODE is not off"}
		}
	}
	for key, addr := range map[string]string{"LISTEN": c.Listen, "OPS_LISTEN": c.OpsListen, "IMPLICIT_LISTEN": c.ImplicitListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return &configError{key, fmt.Sprintf("want host:port, got %q", addr)}
		}
	}
	if err := c.validateSFTP(); err != nil {
		return err
	}
	if _, err := netip.ParseAddr(c.PublicHost); c.PublicHost != "" && err != nil {
		return &configError{"PUBLIC_HOST", "must be an IPv4 or IPv6 address, not a name (PASV announces an address)"}
	}
	// The packages read zero as "use the default"; from the environment it is a mistake.
	for key, d := range map[string]time.Duration{"AUTH_TIMEOUT": c.AuthTimeout, "TLS_HANDSHAKE_TIMEOUT": c.TLSHandshakeTimeout} {
		if d == 0 {
			return &configError{key, "must be a positive duration such as 30s"}
		}
	}
	if c.ShutdownGrace < 0 {
		return &configError{"SHUTDOWN_GRACE", "must not be negative"}
	}
	// The event queue's settings: checked here until djangoclient.EventsConfig has a Validate.
	if c.SpoolDir != "" && !filepath.IsAbs(c.SpoolDir) {
		return &configError{"SPOOL_DIR", "must be an absolute directory"}
	}
	if c.SpoolMaxBytes < djangoclient.MinSpoolMaxBytes {
		return &configError{"SPOOL_MAX_BYTES", fmt.Sprintf("must be at least %d", djangoclient.MinSpoolMaxBytes)}
	}
	return c.validateS3()
}

func (c *config) validateS3() error {
	switch {
	case c.S3PartSize < storage.MinPartSize || c.S3PartSize > storage.MaxPartSize:
		return &configError{"S3_PART_SIZE", fmt.Sprintf("must be between %d (5 MiB) and %d (5 GiB)", storage.MinPartSize, int64(storage.MaxPartSize))}
	case c.S3UploadConcurrency < 1 || c.S3UploadConcurrency > 64:
		return &configError{"S3_UPLOAD_CONCURRENCY", "must be between 1 and 64"}
	case c.S3RenameDirMax < 1:
		return &configError{"S3_RENAME_DIR_MAX", "must be at least 1"}
	}
	return nil
}

// validateSFTP checks the SFTP variables when SFTP is on.
func (c *config) validateSFTP() error {
	if c.StateDir != "" && !filepath.IsAbs(c.StateDir) {
		return &configError{"STATE_DIR", "must be an absolute directory"}
	}
	if c.SFTPListen == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(c.SFTPListen); err != nil {
		return &configError{"SFTP_LISTEN", fmt.Sprintf("want host:port, got %q", c.SFTPListen)}
	}
	if len(c.SFTPHostKeys) == 0 && c.StateDir == "" {
		return &configError{"STATE_DIR", "required when DJFTPD_SFTP_LISTEN is set and DJFTPD_SFTP_HOST_KEYS is not: the generated host key is kept there"}
	}
	for _, f := range c.SFTPHostKeys {
		if _, err := os.Stat(f); err != nil {
			return &configError{"SFTP_HOST_KEYS", fmt.Sprintf("cannot read %s: %v", f, errors.Unwrap(err))}
		}
	}
	if !c.SFTPPasswordAuth && !c.SFTPPublicKeyAuth {
		return &configError{"SFTP_PASSWORD_AUTH", "false with DJFTPD_SFTP_PUBLICKEY_AUTH=false leaves no way to log in over SFTP"}
	}
	return nil
}

func (c config) s3() storage.S3Config {
	return storage.S3Config{
		PathStyle:    c.S3PathStyle,
		PartSize:     c.S3PartSize,
		Concurrency:  c.S3UploadConcurrency,
		RenameDirMax: c.S3RenameDirMax,
		HomeRoot:     c.HomeRoot,
	}
}

// fieldVars names the variable each package Config field comes from: the one place
// that knows both.
var fieldVars = map[string]string{
	"djangoclient.BaseURL": "DJANGO_URL", "djangoclient.Secret": "SECRET",
	"djangoclient.HomeRoot": "HOME_ROOT", "djangoclient.Timeout": "AUTH_TIMEOUT",
	"ftpdriver.PassivePortMin": "PASSIVE_PORTS", "ftpdriver.HomeRoot": "HOME_ROOT",
	"ftpdriver.PublicHost": "PUBLIC_HOST", "ftpdriver.MaxLineLength": "MAX_LINE_LENGTH",
	"ftpdriver.LoginTimeout": "LOGIN_TIMEOUT", "ftpdriver.IdleTimeout": "IDLE_TIMEOUT",
	"ftpdriver.DataTimeout": "DATA_TIMEOUT", "ftpdriver.FailedLoginDelay": "FAILED_LOGIN_DELAY",
	"ftpdriver.MaxLoginAttempts": "MAX_LOGIN_ATTEMPTS", "ftpdriver.MaxConnections": "MAX_CONNECTIONS",
	"ftpdriver.MaxConnectionsPerIP": "MAX_CONNECTIONS_PER_IP", "ftpdriver.MaxPassivePerIP": "MAX_PASSIVE_PER_IP",
	"ftpdriver.BanThreshold": "BAN_THRESHOLD", "ftpdriver.BanWindow": "BAN_WINDOW", "ftpdriver.BanTime": "BAN_TIME",
	"ftpdriver.ProxyTrusted": "PROXY_TRUSTED", "ftpdriver.TLSHandshakeTimeout": "TLS_HANDSHAKE_TIMEOUT",
	"ftpdriver.TLSMode": "TLS_MODE",
}

// fieldError turns a package's ConfigError into a configError naming the variable.
func fieldError(err error) error {
	var key, reason string
	var de *djangoclient.ConfigError
	var fe *ftpdriver.ConfigError
	switch {
	case errors.As(err, &de):
		key, reason = fieldVars["djangoclient."+de.Field], de.Reason
	case errors.As(err, &fe):
		key, reason = fieldVars["ftpdriver."+fe.Field], fe.Reason
	}
	if key == "" {
		return err // a field fieldVars misses: TestEveryVariableValidated catches it
	}
	return &configError{key, reason}
}

func (c config) djangoClient() djangoclient.Config {
	return djangoclient.Config{
		BaseURL:  c.DjangoURL,
		Secret:   []byte(c.Secret),
		HomeRoot: c.HomeRoot,
		Timeout:  c.AuthTimeout,
	}
}

// access is the login policy every protocol front end shares.
func (c config) access() access.Config {
	return access.Config{
		HomeRoot: c.HomeRoot, CreateHome: c.CreateHome,
		FailedLoginDelay: c.FailedLoginDelay, MaxLoginAttempts: c.MaxLoginAttempts,
		BanThreshold: c.BanThreshold, BanWindow: c.BanWindow, BanTime: c.BanTime,
		MaxConnections: c.MaxConnections, MaxConnectionsPerIP: c.MaxConnectionsPerIP,
	}
}

func (c config) events() djangoclient.EventsConfig {
	return djangoclient.EventsConfig{SpoolDir: c.SpoolDir, SpoolMaxBytes: c.SpoolMaxBytes}
}

func (c config) cache() cache.Config {
	return cache.Config{TTL: c.CacheTTL, NegativeTTL: c.CacheNegativeTTL, StaleTTL: c.CacheStaleTTL, PerIP: c.CachePerIP}
}

func (c config) ftp() ftpdriver.Config {
	var public netip.Addr
	if c.PublicHost != "" {
		public = netip.MustParseAddr(c.PublicHost) // checked by validate
	}
	return ftpdriver.Config{
		PassivePortMin:      c.PassivePorts.Min,
		PassivePortMax:      c.PassivePorts.Max,
		PublicHost:          public,
		HomeRoot:            c.HomeRoot,
		CreateHome:          c.CreateHome,
		AtomicUploads:       c.UploadMode == "atomic",
		ASCIIConversion:     c.ASCIIConversion,
		TLSMode:             ftpdriver.TLSMode(c.TLSMode),
		MaxLineLength:       c.MaxLineLength,
		LoginTimeout:        c.LoginTimeout,
		IdleTimeout:         c.IdleTimeout,
		DataTimeout:         c.DataTimeout,
		FailedLoginDelay:    c.FailedLoginDelay,
		MaxLoginAttempts:    c.MaxLoginAttempts,
		MaxConnections:      c.MaxConnections,
		MaxConnectionsPerIP: c.MaxConnectionsPerIP,
		MaxPassivePerIP:     c.MaxPassivePerIP,
		BanThreshold:        c.BanThreshold,
		BanWindow:           c.BanWindow,
		BanTime:             c.BanTime,
		ProxyProtocol:       c.ProxyProtocol,
		ProxyTrusted:        c.ProxyTrusted,
		TLSHandshakeTimeout: c.TLSHandshakeTimeout,
	}
}

// usageFormat prints one variable a line: name, default, meaning.
const usageFormat = `djftpd: FTP/FTPS server for Django users (sidecar of the djftpd Django app).

djftpd --print-host-keys prints the SFTP host key fingerprints (generating the key if needed).

Configuration comes from the environment:

{{range .}}{{usage_key .}}	{{if usage_required .}}(required){{else}}{{usage_default .}}{{end}}	{{usage_description .}}
{{end}}`
