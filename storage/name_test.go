package storage

import (
	"errors"
	"strings"
	"testing"
	"unicode"
)

func TestObjectKey(t *testing.T) {
	long := strings.Repeat("a", 1100)
	tests := []struct {
		name, want string
		ok         bool
	}{
		{".", "p/alice/", true},
		{"a", "p/alice/a", true},
		{"dir/file.txt", "p/alice/dir/file.txt", true},
		{"café ünïcode", "p/alice/café ünïcode", true},
		{"..", "", false},
		{"../bob/x", "", false},
		{"a/../../bob", "", false},
		{"a/..", "", false},
		{"/etc/passwd", "", false},
		{"a//b", "", false},
		{"a/", "", false},
		{"./a", "", false},
		{"", "", false},
		{`a\..\b`, "", false},
		{"a\x00b", "", false},
		{"a\nb", "", false},
		{"a\x7fb", "", false},
		{"a\u0085b", "", false}, // C1 control
		{"\xff", "", false},
		{long, "", false},
	}
	for _, tt := range tests {
		got, err := objectKey("p/alice/", tt.name)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("objectKey(%q) = %q, %v; want %q ok=%v", tt.name, got, err, tt.want, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrBadName) {
			t.Errorf("objectKey(%q): %v is not ErrBadName", tt.name, err)
		}
	}
}

func TestHomePrefix(t *testing.T) {
	tests := []struct {
		prefix, root, home, want string
		ok                       bool
	}{
		{"ftp", "/", "/alice", "ftp/alice/", true},
		{"", "/", "/alice", "alice/", true},
		{"", "/", "/", "", true},
		{"ftp", "/", "/", "ftp/", true},
		{"ftp", "/homes", "/homes/bob", "ftp/homes/bob/", true},
		{"ftp", "/homes", "/homesick/bob", "", false},
		{"ftp", "/homes", "/alice", "", false},
		{"ftp", "/", "alice", "", false},
		{"ftp", "/", "/alice/../bob", "", false},
		{"ftp", "/", `/a\b`, "", false},
		{"ftp", "/", "/a\nb", "", false},
	}
	for _, tt := range tests {
		got, err := homePrefix(tt.prefix, tt.root, tt.home)
		if tt.ok != (err == nil) || got != tt.want {
			t.Errorf("homePrefix(%q, %q, %q) = %q, %v; want %q ok=%v", tt.prefix, tt.root, tt.home, got, err, tt.want, tt.ok)
		}
	}
}

func TestParseLocation(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "local", true},
		{"local", "local", true},
		{"s3://media", "s3://media", true},
		{"s3://media/ftp", "s3://media/ftp", true},
		{"s3://media/ftp/homes/", "s3://media/ftp/homes", true},
		{"s3://Media", "", false},
		{"s3://me", "", false},
		{"s3://media/../x", "", false},
		{"s3://media//x", "", false},
		{"s3://user:pw@media", "", false},
		{"s3://media:9000", "", false},
		{"s3://media?x=1", "", false},
		{"gs://media", "", false},
		{"/srv/ftp", "", false},
	}
	for _, tt := range tests {
		loc, err := ParseLocation(tt.in)
		if tt.ok != (err == nil) || (err == nil && loc.String() != tt.want) {
			t.Errorf("ParseLocation(%q) = %q, %v; want %q ok=%v", tt.in, loc.String(), err, tt.want, tt.ok)
		}
	}
}

// FuzzObjectKey: whatever a client sends, an accepted name gives a key inside the
// home, with no element that any S3 client could read as leaving it.
func FuzzObjectKey(f *testing.F) {
	for _, s := range []string{".", "a", "a/b", "..", "a/../b", "a//b", `a\b`, "a\x00", "/a", "a/.", "ä/ö"} {
		f.Add(s)
	}
	const home = "ftp/alice/"
	f.Fuzz(func(t *testing.T, name string) {
		key, err := objectKey(home, name)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("objectKey(%q): error %v is not ErrBadName", name, err)
			}
			return
		}
		if !strings.HasPrefix(key, home) || len(key) >= maxKeyBytes {
			t.Fatalf("objectKey(%q) = %q: outside the home or too long", name, key)
		}
		rest := strings.TrimPrefix(key, home)
		if rest == "" {
			return
		}
		for _, el := range strings.Split(rest, "/") {
			if el == "" || el == "." || el == ".." {
				t.Fatalf("objectKey(%q) = %q: element %q", name, key, el)
			}
		}
		if strings.ContainsFunc(rest, func(r rune) bool { return r == '\\' || unicode.IsControl(r) }) {
			t.Fatalf("objectKey(%q) = %q: backslash or control character", name, key)
		}
	})
}
