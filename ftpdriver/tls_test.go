package ftpdriver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jlaffaye/ftp"
)

// writeTestCert writes a self-signed certificate for 127.0.0.1 and returns the file
// paths.
func writeTestCert(t *testing.T, dir, cn string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func newTLSServer(t *testing.T, mode TLSMode, mutate ...func(*Config)) (*testServer, *CertReloader, string) {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile := writeTestCert(t, dir, "first")
	r, err := NewCertReloader(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, append([]func(*Config){func(c *Config) { c.TLSMode = mode; c.TLS = r.TLSConfig() }}, mutate...)...)
	return ts, r, dir
}

// clientTLS is one client's configuration: its data connections resume the control
// connection's session, which djftpd requires (one cache per client, and a server name,
// the cache key: without it the key is the address, which differs on data connections).
func clientTLS() *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "127.0.0.1", //nolint:gosec // self-signed test certificate
		ClientSessionCache: tls.NewLRUClientSessionCache(8)}
}

func roundTrip(t *testing.T, c *ftp.ServerConn) {
	t.Helper()
	if err := c.Login("alice", "alice-pw"); err != nil {
		t.Fatal(err)
	}
	if err := c.Stor("secret.txt", strings.NewReader("over TLS")); err != nil {
		t.Fatal(err)
	}
	r, err := c.Retr("secret.txt")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "over TLS" {
		t.Fatalf("RETR = %q", b)
	}
	if _, err := c.List("/"); err != nil {
		t.Fatal(err)
	}
}

func TestExplicitTLS(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTLSServer(t, TLSExplicit)
	c, err := ftp.Dial(ts.addr, ftp.DialWithExplicitTLS(clientTLS()), ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	roundTrip(t, c)
	ts.auth.mu.Lock()
	if p := ts.auth.calls[len(ts.auth.calls)-1].Protocol; p != "ftps" {
		t.Errorf("protocol sent to Django = %q, want ftps", p)
	}
	ts.auth.mu.Unlock()

	// Plain FTP is still allowed in explicit mode.
	plain := ts.client(t, "alice", "alice-pw")
	if _, err := plain.List("/"); err != nil {
		t.Fatal(err)
	}
}

func TestImplicitTLS(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTLSServer(t, TLSImplicit)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = ts.srv.ServeImplicit(t.Context(), ln) }()
	c, err := ftp.Dial(ln.Addr().String(), ftp.DialWithTLS(clientTLS()), ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	roundTrip(t, c)
}

// TestRequiredTLS: no USER/PASS before AUTH TLS, no data channel before PROT P.
func TestRequiredTLS(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTLSServer(t, TLSRequired)
	rc := ts.dial(t)
	if code, _ := rc.cmd("USER alice"); code != 530 {
		t.Fatalf("USER before AUTH TLS = %d, want 530", code)
	}
	if code, msg := rc.cmd("FEAT"); code != 211 || !strings.Contains(msg, "AUTH TLS") {
		t.Fatalf("FEAT = %d %q", code, msg)
	}
	if code, _ := rc.cmd("AUTH TLS"); code != 234 {
		t.Fatalf("AUTH TLS = %d", code)
	}
	tc := tls.Client(rc.c, clientTLS())
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	rc = &rawConn{t: t, c: tc, tp: newTextproto(tc)}
	rc.login("alice", "alice-pw")
	if code, _ := rc.cmd("PROT C"); code != 534 {
		t.Fatalf("PROT C in required mode = %d, want 534", code)
	}
	rc.cmd("EPSV")
	if code, _ := rc.cmd("LIST"); code != 521 {
		t.Fatalf("LIST without PROT P = %d, want 521", code)
	}

	c, err := ftp.Dial(ts.addr, ftp.DialWithExplicitTLS(clientTLS()), ftp.DialWithTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Quit()
	roundTrip(t, c)
}

func TestAUTHWithoutTLSConfigured(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	if code, _ := rc.cmd("AUTH TLS"); code != 502 {
		t.Fatalf("AUTH TLS without a certificate = %d, want 502", code)
	}
	if _, msg := rc.cmd("FEAT"); strings.Contains(msg, "AUTH") {
		t.Fatalf("FEAT offers AUTH without a certificate:\n%s", msg)
	}
}

func TestCertReload(t *testing.T) {
	t.Parallel()
	ts, r, dir := newTLSServer(t, TLSExplicit)
	serverCN := func() string {
		c, err := ftp.Dial(ts.addr, ftp.DialWithExplicitTLS(&tls.Config{InsecureSkipVerify: true}), ftp.DialWithTimeout(5*time.Second)) //nolint:gosec // test
		if err != nil {
			t.Fatal(err)
		}
		defer c.Quit()
		var cn string
		conf := &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(cs tls.ConnectionState) error { //nolint:gosec // test
			cn = cs.PeerCertificates[0].Subject.CommonName
			return nil
		}}
		c2, err := ftp.Dial(ts.addr, ftp.DialWithExplicitTLS(conf), ftp.DialWithTimeout(5*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		c2.Quit()
		return cn
	}
	if cn := serverCN(); cn != "first" {
		t.Fatalf("CN = %q", cn)
	}
	writeTestCert(t, dir, "second")
	if err := r.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := serverCN(); cn != "second" {
		t.Fatalf("after reload CN = %q, want second", cn)
	}
	if err := os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := r.Reload(); err == nil {
		t.Fatal("reloading a broken certificate succeeded")
	}
	if cn := serverCN(); cn != "second" {
		t.Fatalf("a failed reload replaced the certificate: CN = %q", cn)
	}
}

// TestDataConnectionResumesTLSSession: a client that offers the control connection's
// session on its data connection gets it resumed (what vsftpd's require_ssl_reuse
// checks; FileZilla and lftp rely on it for speed).
func TestDataConnectionResumesTLSSession(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTLSServer(t, TLSExplicit)
	rc := ts.dial(t)
	if code, _ := rc.cmd("AUTH TLS"); code != 234 {
		t.Fatalf("AUTH TLS = %d", code)
	}
	conf := &tls.Config{InsecureSkipVerify: true, ServerName: "ftp.test", //nolint:gosec // test
		ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	tc := tls.Client(rc.c, conf)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	rc = &rawConn{t: t, c: tc, tp: newTextproto(tc)}
	rc.login("alice", "alice-pw") // reading replies also reads the session ticket
	rc.cmd("PBSZ 0")
	rc.cmd("PROT P")
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("LIST"); err != nil {
		t.Fatal(err)
	}
	data := tls.Client(dial(), conf)
	if err := data.Handshake(); err != nil {
		t.Fatal(err)
	}
	rc.expect(150)
	if !data.ConnectionState().DidResume {
		t.Fatal("the data connection did not resume the control connection's TLS session")
	}
	_, _ = io.ReadAll(data)
	data.Close()
	rc.expect(226)
}
