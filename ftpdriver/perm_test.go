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
// "A|B" sends A first and checks B's reply. A command that needs several letters (HASH)
// is tried under each, "with" meaning with all of its letters.
func TestPermissionMatrix(t *testing.T) {
	t.Parallel()
	commands := map[byte][]string{
		'e': {"CWD sub", "CDUP", "XCWD sub", "XCUP"},
		'l': {"LIST", "NLST", "MLSD", "MLST f.txt", "SIZE f.txt", "MDTM f.txt", "STAT f.txt", "HASH f.txt"},
		'r': {"RETR f.txt", "HASH f.txt"},
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
	keyOf := func(line string) string {
		last := line[strings.LastIndex(line, "|")+1:]
		return permKey(strings.Fields(last)[0], strings.TrimPrefix(last, strings.Fields(last)[0]))
	}
	for verb, letters := range commandPerms {
		for _, letter := range []byte(letters) {
			found := false
			for _, line := range commands[letter] {
				found = found || keyOf(line) == verb
			}
			if !found {
				t.Errorf("%s needs %q but the matrix does not try it", verb, letter)
			}
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
	for _, letters := range commandPerms {
		ts.auth.grants["only-"+letters+":pw"] = djangoclient.Grant{Username: "only-" + letters, Home: root + "/only-" + letters, Perms: letters}
	}
	setup := func(home string) {
		_ = os.MkdirAll(filepath.Join(home, "sub"), 0o750)
		_ = os.WriteFile(filepath.Join(home, "f.txt"), []byte("f"), 0o640)
	}
	for _, letter := range []byte(djangoclient.PermLetters) {
		t.Run(string(letter), func(t *testing.T) {
			for _, line := range commands[letter] {
				with, without := "only-"+commandPerms[keyOf(line)], "all-but-"+string(letter)
				if commandPerms[keyOf(line)] == "" {
					with = "only-" + string(letter)
				}
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

// TestHASHNeedsReadToo: HASH reveals what a file holds, so it needs r as well as l
// (issue 12 item 15); with both it answers.
func TestHASHNeedsReadToo(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	root := filepath.Dir(ts.home)
	tests := []struct {
		perms string
		want  int
	}{
		{"l", 550},
		{"r", 550},
		{"elr", 213},
	}
	for _, tt := range tests {
		user := "hash-" + tt.perms
		home := filepath.Join(root, user)
		ts.auth.grants[user+":pw"] = djangoclient.Grant{Username: user, Home: home, Perms: tt.perms}
		_ = os.MkdirAll(home, 0o750)
		_ = os.WriteFile(filepath.Join(home, "f.txt"), []byte("secret"), 0o640)
	}
	for _, tt := range tests {
		rc := ts.dial(t)
		rc.login("hash-"+tt.perms, "pw")
		if code, msg := rc.cmd("HASH f.txt"); code != tt.want {
			t.Errorf("HASH with %q = %d %s, want %d", tt.perms, code, msg, tt.want)
		}
	}
}
