package ftpdriver

import (
	"crypto/tls"
	"io"
	"os"
	"testing"
	"time"
)

// tlsControl opens an explicit-TLS control connection with conf, logged in as alice,
// with PROT P set.
func tlsControl(t *testing.T, ts *testServer, conf *tls.Config) *rawConn {
	t.Helper()
	rc := ts.dial(t)
	if code, _ := rc.cmd("AUTH TLS"); code != 234 {
		t.Fatalf("AUTH TLS = %d", code)
	}
	tc := tls.Client(rc.c, conf)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	rc = &rawConn{t: t, c: tc, tp: newTextproto(tc)}
	rc.login("alice", "alice-pw") // reading replies also reads the session ticket
	rc.cmd("PBSZ 0")
	if code, _ := rc.cmd("PROT P"); code != 200 {
		t.Fatalf("PROT P = %d", code)
	}
	return rc
}

// resumingConf is a client configuration whose data connections can resume the
// control connection's session: one cache, one server name for every connection.
func resumingConf(version uint16) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "ftp.test", MaxVersion: version, //nolint:gosec // self-signed test certificate
		ClientSessionCache: tls.NewLRUClientSessionCache(4)}
}

// dataListing runs LIST over a new protected data connection made with conf and
// returns the final reply code and what the data connection delivered.
func dataListing(t *testing.T, ts *testServer, rc *rawConn, conf *tls.Config) (int, string) {
	t.Helper()
	dial := rc.epsvData(t, ts.addr)
	if err := rc.tp.PrintfLine("LIST"); err != nil {
		t.Fatal(err)
	}
	raw := dial()
	_ = raw.SetDeadline(time.Now().Add(5 * time.Second))
	data := tls.Client(raw, conf)
	var got []byte
	if err := data.Handshake(); err == nil {
		got, _ = io.ReadAll(data)
	}
	data.Close()
	rc.expect(150)
	code, _ := rc.read()
	return code, string(got)
}

// TestDataConnectionMustResumeControlSession: with PROT P, a data connection that does
// not resume the control connection's TLS session (a thief on the same address racing
// to the passive port, or a client offering a ticket of another session) gets nothing,
// the transfer is answered 522, and the real client goes on (vsftpd's require_ssl_reuse).
func TestDataConnectionMustResumeControlSession(t *testing.T) {
	t.Parallel()
	ts, _, _ := newTLSServer(t, TLSExplicit)
	if err := os.MkdirAll(ts.home, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ts.home+"/secret.txt", []byte("top secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, version := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(version), func(t *testing.T) {
			conf := resumingConf(version)
			rc := tlsControl(t, ts, conf)

			thief := &tls.Config{InsecureSkipVerify: true, MaxVersion: version} //nolint:gosec // test
			if code, got := dataListing(t, ts, rc, thief); code != 522 || got != "" {
				t.Fatalf("fresh TLS session on the data connection: reply %d, data %q; want 522 and nothing", code, got)
			}
			if code, got := dataListing(t, ts, rc, conf); code != 226 || got == "" {
				t.Fatalf("resumed data connection after a refused thief: reply %d, data %q", code, got)
			}

			// A ticket from another control session of the same server does not resume here.
			other := tlsControl(t, ts, resumingConf(version))
			if code, got := dataListing(t, ts, other, conf); code != 522 || got != "" {
				t.Fatalf("ticket of another session: reply %d, data %q; want 522 and nothing", code, got)
			}
			if code, _ := other.cmd("NOOP"); code != 200 {
				t.Fatalf("session after a refused data connection: NOOP = %d", code)
			}
		})
	}
}
