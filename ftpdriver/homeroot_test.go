package ftpdriver

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/djftpd/djftpd/djangoclient"
)

// TestHomeSymlinkOutOfRootRefused: a symlink planted under DJFTPD_HOME_ROOT in place of
// a home does not move the home out of the root: the login is a server fault (421) and
// nothing of the symlink's target is reachable.
func TestHomeSymlinkOutOfRootRefused(t *testing.T) {
	t.Parallel()
	for _, create := range []bool{true, false} {
		ts := newTestServer(t, func(c *Config) { c.CreateHome = create })
		elsewhere := t.TempDir()
		if err := os.WriteFile(filepath.Join(elsewhere, "outside.txt"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(elsewhere, ts.home); err != nil {
			t.Fatal(err)
		}
		rc := ts.dial(t)
		rc.cmd("USER alice")
		if code, msg := rc.cmd("PASS alice-pw"); code != 421 {
			t.Errorf("create=%v: login through a symlinked home = %d %s, want 421", create, code, msg)
			if code == 230 {
				_, list := rc.cmd("STAT .")
				t.Logf("listing: %s", list)
			}
		}
	}
}

// TestHomeIsTheRoot: a grant whose home is DJFTPD_HOME_ROOT itself (the 0.3 layout with
// HOME_ROOT=/ is the extreme case) still logs in.
func TestHomeIsTheRoot(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	root := filepath.Dir(ts.home)
	ts.auth.mu.Lock()
	ts.auth.grants["carol:carol-pw"] = djangoclient.Grant{Username: "carol", Home: root, Perms: "elr"}
	ts.auth.grants["dave:dave-pw"] = djangoclient.Grant{Username: "dave", Home: root + "/a/b/dave", Perms: "elr"}
	ts.auth.mu.Unlock()
	for _, user := range []string{"carol", "dave"} {
		rc := ts.dial(t)
		rc.login(user, user+"-pw")
		if code, _ := rc.cmd("STAT ."); code != 213 && code != 211 && code != 212 {
			t.Errorf("%s: STAT = %d", user, code)
		}
	}
}

// TestHomeRootSlash: DJFTPD_HOME_ROOT=/ (djftpd 0.3 sites without HOME_ROOT) opens any
// absolute home, through symlinked system directories too.
func TestHomeRootSlash(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.HomeRoot = "/" })
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	if code, _ := rc.cmd("MKD sub"); code != 257 {
		t.Fatalf("MKD = %d", code)
	}
	if _, err := os.Stat(filepath.Join(ts.home, "sub")); err != nil {
		t.Fatal(err)
	}
}
