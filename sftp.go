package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"

	"github.com/kelseyhightower/envconfig"
	"golang.org/x/crypto/ssh"

	"github.com/djftpd/djftpd/sftpd"
)

// hostKeyConfig is the part of the configuration --print-host-keys needs.
type hostKeyConfig struct {
	SFTPHostKeys []string `envconfig:"SFTP_HOST_KEYS"`
	StateDir     string   `split_words:"true"`
}

// sftpHostKeys loads (or generates once) the SFTP host keys; the error names the variable.
func sftpHostKeys(files []string, stateDir string, log *slog.Logger) ([]ssh.Signer, error) {
	keys, err := sftpd.LoadHostKeys(files, stateDir, log)
	if err != nil {
		key := "SFTP_HOST_KEYS"
		if len(files) == 0 {
			key = "STATE_DIR"
		}
		return nil, &configError{key, err.Error()}
	}
	return keys, nil
}

// printHostKeys is djftpd --print-host-keys: the SFTP host keys' fingerprints, one a line,
// as ssh-keygen -l shows them (generating the key first if it does not exist yet, so it can
// be published before the first start).
func printHostKeys(w io.Writer) int {
	var hk hostKeyConfig
	if err := envconfig.Process(envPrefix, &hk); err != nil {
		fmt.Fprintln(os.Stderr, "djftpd: "+err.Error())
		return exitConfig
	}
	keys, err := sftpHostKeys(hk.SFTPHostKeys, hk.StateDir, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, "djftpd: "+err.Error())
		return exitConfig
	}
	for _, fp := range sftpd.Fingerprints(keys) {
		fmt.Fprintln(w, fp)
	}
	return exitOK
}

// sftpService is the SFTP listener and its server.
type sftpService struct {
	srv  *sftpd.Server
	ln   net.Listener
	log  *slog.Logger
	done chan error
}

// newSFTP loads (or generates once) the host keys, logs their fingerprints and opens the
// SFTP listener over gate when DJFTPD_SFTP_LISTEN is set; nil, nil otherwise. serve starts
// it, stop drains it.
func newSFTP(cfg config, gate *sftpGate, log *slog.Logger) (*sftpService, error) {
	if cfg.SFTPListen == "" {
		return nil, nil
	}
	keys, err := sftpHostKeys(cfg.SFTPHostKeys, cfg.StateDir, log)
	if err != nil {
		return nil, err
	}
	srv, err := sftpd.New(sftpd.Config{
		HostKeys:      keys,
		PasswordAuth:  cfg.SFTPPasswordAuth,
		PublicKeyAuth: cfg.SFTPPublicKeyAuth,
		LoginTimeout:  cfg.LoginTimeout,
		IdleTimeout:   cfg.IdleTimeout,
		AtomicUploads: cfg.UploadMode == "atomic",
		Log:           log,
		ProxyProtocol: cfg.ProxyProtocol,
		ProxyTrusted:  cfg.ProxyTrusted,
		AcceptError:   func() { gate.metrics.AcceptError("sftp") },
	}, gate)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.SFTPListen)
	if err != nil {
		return nil, fmt.Errorf("listen on DJFTPD_SFTP_LISTEN: %w", err)
	}
	for _, fp := range sftpd.Fingerprints(keys) {
		log.Info("SFTP host key", "fingerprint", fp)
	}
	return &sftpService{srv: srv, ln: ln, log: log, done: make(chan error, 1)}, nil
}

// serve accepts SFTP connections in a goroutine that stop waits for.
func (s *sftpService) serve() {
	if s == nil {
		return
	}
	s.log.Info("SFTP listening", "sftp", s.ln.Addr().String())
	go func() { s.done <- s.srv.Serve(s.ln) }()
}

// stop drains the SFTP sessions until ctx ends, then closes the rest.
func (s *sftpService) stop(ctx context.Context) {
	if s == nil {
		return
	}
	if err := s.srv.Shutdown(ctx); err != nil {
		s.log.Warn("sftp shutdown", "err", err)
	}
	if err := <-s.done; err != nil && !errors.Is(err, sftpd.ErrServerClosed) {
		s.log.Warn("sftp listener", "err", err)
	}
}
