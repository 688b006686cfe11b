package ftpdriver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/djftpd/djftpd/djangoclient"
)

// TestPermissionMatrix: for each letter, its commands pass the permission check with
// the letter alone and answer 550 Permission denied with every letter but it
// (DESIGN.md §4). Data commands answer 425 (no data channel) once the check passed.
// "A|B" sends A first and checks B's reply.
func TestPermissionMatrix(t *testing.T) {
	t.Parallel()
	commands := map[byte][]string{
		'e': {"CWD sub", "CDUP", "XCWD sub", "XCUP"},
		'l': {"LIST", "NLST", "MLSD", "MLST f.txt", "SIZE f.txt", "MDTM f.txt", "STAT f.txt", "HASH f.txt"},
		'r': {"RETR f.txt"},
		'a': {"APPE f.txt"},
		'd': {"DELE f.txt", "RMD sub", "XRMD sub"},
		'f': {"RNFR f.txt", "RNFR f.txt|RNTO h.txt"},
		'm': {"MKD newdir", "XMKD newdir2"},
		'w': {"STOR g.txt", "STOU"},
		'M': {"SITE CHMOD 640 f.txt"},
		'T': {"MFMT 20200101000000 f.txt"},
	}
	for _, letter := range []byte(djangoclient.PermLetters) {
		if len(commands[letter]) == 0 {
			t.Fatalf("no command tried for letter %q", letter)
		}
	}
	for verb, letter := range commandPerms {
		found := false
		for _, line := range commands[letter] {
			last := line[strings.LastIndex(line, "|")+1:]
			found = found || permKey(strings.Fields(last)[0], strings.TrimPrefix(last, strings.Fields(last)[0])) == verb
		}
		if !found {
			t.Errorf("%s needs %q but the matrix does not try it", verb, letter)
		}
	}

	ts := newTestServer(t)
	root := filepath.Dir(ts.home)
	for _, letter := range []byte(djangoclient.PermLetters) {
		l := string(letter)
		ts.auth.grants["only-"+l+":pw"] = djangoclient.Grant{Username: "only-" + l, Home: root + "/only-" + l, Perms: l}
		ts.auth.grants["all-but-"+l+":pw"] = djangoclient.Grant{Username: "all-but-" + l, Home: root + "/all-but-" + l,
			Perms: strings.ReplaceAll(djangoclient.PermLetters, l, "")}
	}
	setup := func(home string) {
		_ = os.MkdirAll(filepath.Join(home, "sub"), 0o750)
		_ = os.WriteFile(filepath.Join(home, "f.txt"), []byte("f"), 0o640)
	}
	for _, letter := range []byte(djangoclient.PermLetters) {
		t.Run(string(letter), func(t *testing.T) {
			for _, line := range commands[letter] {
				with, without := "only-"+string(letter), "all-but-"+string(letter)
				setup(filepath.Join(root, with))
				setup(filepath.Join(root, without))
				run := func(user string) (int, string) {
					rc := ts.dial(t)
					rc.login(user, "pw")
					var code int
					var msg string
					for _, cmd := range strings.Split(line, "|") {
						code, msg = rc.cmd("%s", cmd)
					}
					return code, msg
				}
				if code, msg := run(with); code == 550 && msg == "Permission denied" || code >= 500 && code != 550 {
					t.Errorf("%s with %q: %d %s", line, letter, code, msg)
				}
				if code, msg := run(without); code != 550 || msg != "Permission denied" {
					t.Errorf("%s without %q: %d %s, want 550 Permission denied", line, letter, code, msg)
				}
			}
		})
	}
}
