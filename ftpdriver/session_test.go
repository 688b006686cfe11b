package ftpdriver

import (
	"errors"
	"regexp"
	"testing"
)

// TestSessionIDs: ids keep their form (16 hex digits: Django's admin and the e2e tests
// read it) and do not repeat.
func TestSessionIDs(t *testing.T) {
	t.Parallel()
	form := regexp.MustCompile(`^[0-9a-f]{16}$`)
	seen := make(map[string]bool)
	for range 100_000 {
		id := newSessionID()
		if !form.MatchString(id) || seen[id] {
			t.Fatalf("id %q: malformed or repeated", id)
		}
		seen[id] = true
	}
}

// TestResolve: client paths become the virtual path and the home-relative path
// os.Root takes; no ".." survives, and NUL or invalid UTF-8 is refused.
func TestResolve(t *testing.T) {
	t.Parallel()
	s := &session{cwd: "/sub"}
	cases := []struct {
		arg, virtual, rel string
		err               error
	}{
		{"f.txt", "/sub/f.txt", "sub/f.txt", nil},
		{"/f.txt", "/f.txt", "f.txt", nil},
		{"..", "/", ".", nil},
		{"../../../etc/passwd", "/etc/passwd", "etc/passwd", nil},
		{"/a/./b//c/", "/a/b/c", "a/b/c", nil},
		{"", "/sub", "sub", nil},
		{"bad\x00name", "", "", errBadPath},
		{"bad\xffname", "", "", errBadPath},
	}
	for _, c := range cases {
		virtual, rel, err := s.resolve(c.arg)
		if virtual != c.virtual || rel != c.rel || !errors.Is(err, c.err) {
			t.Errorf("resolve(%q) = %q, %q, %v; want %q, %q, %v", c.arg, virtual, rel, err, c.virtual, c.rel, c.err)
		}
	}
}
