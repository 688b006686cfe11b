package ftpdriver

import "testing"

func TestCommandsNeedLogin(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t)
	rc := ts.dial(t)
	for _, cmd := range []string{"PWD", "CWD /", "LIST", "RETR x", "STOR x", "PASV", "MKD d", "SIZE x", "TYPE I"} {
		if code, _ := rc.cmd("%s", cmd); code != 530 {
			t.Errorf("%s before login = %d, want 530", cmd, code)
		}
	}
	for _, cmd := range []string{"SYST", "NOOP", "FEAT"} {
		if code, _ := rc.cmd("%s", cmd); code >= 400 {
			t.Errorf("%s before login = %d, want success", cmd, code)
		}
	}
}
