package ftpdriver

import "testing"

func TestDirection(t *testing.T) {
	t.Parallel()
	for cmd, want := range map[string]string{
		"RETR": "download", "STOR": "upload", "APPE": "upload", "STOU": "upload",
		"LIST": "listing", "NLST": "listing", "MLSD": "listing",
	} {
		if got := direction(cmd); got != want {
			t.Errorf("direction(%s) = %q, want %q", cmd, got, want)
		}
	}
}
