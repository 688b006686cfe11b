package main

import (
	"fmt"
	"io"
	"log/slog"
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
