package ftpdriver

import (
	"io"
	"os"
	"path/filepath"
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

// TestMLSDConformance: RFC 3659 7 — MLSD of a file is 501, the cdir entry names the
// directory as given, and OPTS MLST applies to every entry.
func TestMLSDConformance(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	rc.login("alice", "alice-pw")
	rc.cmd("MKD sub")
	if err := os.WriteFile(filepath.Join(ts.home, "sub", "f.txt"), []byte("12345"), 0o640); err != nil {
		t.Fatal(err)
	}
	dial := rc.epsvData(t, ts.addr)
	if code, msg := rc.cmd("MLSD sub/f.txt"); code != 501 {
		t.Fatalf("MLSD on a file = %d %q, want 501", code, msg)
	}
	_ = dial // the pending passive listener was closed with the refusal
	if code, msg := rc.cmd("OPTS MLST size;"); code != 200 || msg != "MLST OPTS size;" {
		t.Fatalf("OPTS MLST = %d %q", code, msg)
	}
	for _, arg := range []string{"sub", "/sub", "sub/"} {
		dial := rc.epsvData(t, ts.addr)
		if err := rc.tp.PrintfLine("MLSD %s", arg); err != nil {
			t.Fatal(err)
		}
		data := dial()
		rc.expect(150)
		listing, _ := io.ReadAll(data)
		rc.expect(226)
		lines := strings.Split(strings.TrimSuffix(string(listing), "\r\n"), "\r\n")
		want := []string{" " + arg, " ..", "size=5; f.txt"}
		if len(lines) != len(want) {
			t.Fatalf("MLSD %s = %q", arg, lines)
		}
		for i, w := range want {
			if lines[i] != w {
				t.Errorf("MLSD %s line %d = %q, want %q (only the size fact is on)", arg, i, lines[i], w)
			}
		}
	}
}
