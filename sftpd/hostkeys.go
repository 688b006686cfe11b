package sftpd

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// GeneratedHostKeyName is the file, in the state directory, of the host key generated when
// no host key file is configured.
const GeneratedHostKeyName = "ssh_host_ed25519_key"

// LoadHostKeys returns the server's host keys: the PEM/OpenSSH private key files of files,
// or, when files is empty, the ed25519 key in stateDir/ssh_host_ed25519_key, generated
// (mode 0600) on first use and reused afterwards, so clients never see a new host key after
// a restart. RSA keys sign with SHA-2 only.
func LoadHostKeys(files []string, stateDir string, log *slog.Logger) ([]ssh.Signer, error) {
	if len(files) == 0 {
		if stateDir == "" {
			return nil, errors.New("no host key: set DJFTPD_SFTP_HOST_KEYS or DJFTPD_STATE_DIR")
		}
		name := filepath.Join(stateDir, GeneratedHostKeyName)
		if err := generateHostKey(name, log); err != nil {
			return nil, err
		}
		files = []string{name}
	}
	var signers []ssh.Signer
	for _, name := range files {
		s, err := loadHostKey(name, log)
		if err != nil {
			return nil, err
		}
		signers = append(signers, s)
	}
	return signers, nil
}

func loadHostKey(name string, log *slog.Logger) (ssh.Signer, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	if fi, err := os.Stat(name); err == nil && fi.Mode().Perm()&0o077 != 0 && log != nil {
		log.Warn("SFTP host key file is readable by others than its owner", "file", name, "mode", fi.Mode().Perm().String())
	}
	s, err := ssh.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("host key %s: %w", name, err)
	}
	switch s.PublicKey().Type() {
	case ssh.KeyAlgoED25519, ssh.KeyAlgoECDSA256, ssh.KeyAlgoECDSA384, ssh.KeyAlgoECDSA521:
		return s, nil
	case ssh.KeyAlgoRSA:
		as, ok := s.(ssh.AlgorithmSigner)
		if !ok {
			return nil, fmt.Errorf("host key %s: RSA signer without algorithm choice", name)
		}
		// No ssh-rsa (SHA-1) signatures.
		return ssh.NewSignerWithAlgorithms(as, []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256})
	}
	return nil, fmt.Errorf("host key %s: type %s not accepted (ed25519, ecdsa or rsa)", name, s.PublicKey().Type())
}

// generateHostKey writes a new ed25519 key to name unless a file is there already. The key
// is written to a temporary file then linked into place, so a crash or a second process
// never leaves a half-written or replaced key.
func generateHostKey(name string, log *slog.Logger) error {
	if _, err := os.Lstat(name); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "djftpd")
	if err != nil {
		return fmt.Errorf("encode host key: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".ssh_host_key-*")
	if err != nil {
		return fmt.Errorf("write host key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write host key: %w", err)
	}
	if err := pem.Encode(tmp, block); err != nil {
		tmp.Close()
		return fmt.Errorf("write host key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write host key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write host key: %w", err)
	}
	if err := os.Link(tmp.Name(), name); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("write host key: %w", err)
	}
	if log != nil {
		log.Info("generated SFTP host key", "file", name)
	}
	return nil
}

// Fingerprints lists "TYPE SHA256:..." for each host key, as ssh-keygen -l shows them.
func Fingerprints(signers []ssh.Signer) []string {
	out := make([]string, 0, len(signers))
	for _, s := range signers {
		out = append(out, s.PublicKey().Type()+" "+ssh.FingerprintSHA256(s.PublicKey()))
	}
	return out
}
