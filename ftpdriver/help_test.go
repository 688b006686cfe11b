package ftpdriver

import (
	"strings"
	"testing"
)

func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	for verb := range commandTable() {
		if commandSyntax[verb] == "" {
			t.Errorf("%s has no commandSyntax entry", verb)
		}
	}
	for _, verb := range unimplementedVerbs {
		if _, ok := commandTable()[verb]; ok {
			t.Errorf("%s is both implemented and unimplemented", verb)
		}
	}
}

// TestHELP: RFC 1123 4.1.2.13 requires HELP; standard commands djftpd does not do
// answer 502, unknown words 500.
func TestHELP(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	tests := []struct {
		line     string
		wantCode int
		wantText []string
	}{
		{"HELP", 214, []string{"RETR", "STOR", "MLSD", "HELP", "Help OK"}},
		{"HELP retr", 214, []string{"Syntax: RETR <sp> file"}},
		{"HELP FOO", 502, []string{"Unknown command FOO"}},
		{"REIN", 502, []string{"not implemented"}},
		{"ACCT x", 502, []string{"not implemented"}},
		{"SMNT /x", 502, []string{"not implemented"}},
		{"XYZZY", 500, nil},
	}
	for _, tt := range tests {
		code, msg := rc.cmd("%s", tt.line)
		if code != tt.wantCode {
			t.Errorf("%s = %d %q, want %d", tt.line, code, msg, tt.wantCode)
		}
		for _, w := range tt.wantText {
			if !strings.Contains(msg, w) {
				t.Errorf("%s = %q, want it to contain %q", tt.line, msg, w)
			}
		}
	}
	if strings.Contains(rc.expectHelp(t), "REIN") {
		t.Error("HELP lists REIN, which is not implemented")
	}
	rc.login("alice", "alice-pw")
	for line, want := range map[string]string{
		"SITE HELP":       "CHMOD",
		"SITE HELP chmod": "Syntax: SITE CHMOD",
	} {
		if code, msg := rc.cmd("%s", line); code != 214 || !strings.Contains(msg, want) {
			t.Errorf("%s = %d %q, want 214 with %q", line, code, msg, want)
		}
	}
	if code, _ := rc.cmd("SITE HELP NOPE"); code != 502 {
		t.Errorf("SITE HELP NOPE = %d, want 502", code)
	}
}

func (rc *rawConn) expectHelp(t *testing.T) string {
	t.Helper()
	code, msg := rc.cmd("HELP")
	if code != 214 {
		t.Fatalf("HELP = %d %q", code, msg)
	}
	return msg
}

func TestFEATListsTVFS(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	if _, msg := rc.cmd("FEAT"); !strings.Contains(msg, "\n TVFS\n") {
		t.Fatalf("FEAT lacks TVFS:\n%s", msg)
	}
}
