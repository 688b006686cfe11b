package storage

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// temps lists the upload temporary files left in dir.
func temps(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	must(t, err)
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), UploadTempPrefix) {
			names = append(names, e.Name())
		}
	}
	return names
}

// TestLocalFile drives the upload both front ends share on the real file system: writes
// at offsets out of order, reads back through a read-write handle, then Commit or Abort,
// atomic and in place.
func TestLocalFile(t *testing.T) {
	for _, tc := range []struct {
		name    string
		old     string // the target before; "" none
		atomic  bool
		flag    int
		commit  bool
		during  string // the target while the upload is open; "-" missing
		want    string // the target after; "-" missing
		wantErr bool
	}{
		{name: "atomic commit", old: "old bytes", atomic: true, flag: os.O_RDWR, commit: true, during: "old bytes", want: "hello world"},
		{name: "atomic new commit", atomic: true, flag: os.O_WRONLY, commit: true, during: "-", want: "hello world"},
		{name: "atomic abort", old: "old bytes", atomic: true, flag: os.O_RDWR, during: "old bytes", want: "old bytes"},
		{name: "atomic new abort", atomic: true, flag: os.O_WRONLY, during: "-", want: "-"},
		{name: "in place commit", old: "01234567890more", flag: os.O_RDWR, commit: true, during: "hello worldmore", want: "hello worldmore"},
		{name: "in place abort keeps", old: "old bytes", flag: os.O_WRONLY | os.O_TRUNC, during: "hello world", want: "hello world"},
		{name: "in place create", flag: os.O_RDWR | os.O_CREATE, commit: true, during: "hello world", want: "hello world"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			target := filepath.Join(dir, "f.txt")
			if tc.old != "" {
				must(t, os.WriteFile(target, []byte(tc.old), 0o600))
			}
			root, err := os.OpenRoot(dir)
			must(t, err)
			defer root.Close()
			u, err := OpenLocalFile(root, "f.txt", tc.atomic, tc.flag)
			must(t, err)
			if got := u.Atomic(); got != tc.atomic || (u.Temp() != "") != tc.atomic {
				t.Fatalf("Atomic() = %v, Temp() = %q; want atomic %v", got, u.Temp(), tc.atomic)
			}
			// Out of order, as pkg/sftp's workers may run a client's writes.
			for _, w := range []struct {
				s   string
				off int64
			}{{"world", 6}, {"hello ", 0}} {
				if n, err := u.WriteAt([]byte(w.s), w.off); err != nil || n != len(w.s) {
					t.Fatalf("WriteAt(%q, %d) = %d, %v", w.s, w.off, n, err)
				}
			}
			if tc.flag&os.O_RDWR != 0 {
				b := make([]byte, 11)
				if n, err := u.ReadAt(b, 0); err != nil || string(b[:n]) != "hello world" {
					t.Fatalf("ReadAt = %q, %v; want what the upload wrote", b[:n], err)
				}
			}
			checkFile(t, target, tc.during)
			if tc.atomic && len(temps(t, dir)) != 1 {
				t.Fatalf("temporary files while open: %v, want one", temps(t, dir))
			}
			if tc.commit {
				err = u.Commit()
			} else {
				err = u.Abort()
			}
			must(t, err)
			checkFile(t, target, tc.want)
			if left := temps(t, dir); len(left) != 0 {
				t.Fatalf("temporary files left: %v", left)
			}
		})
	}
}

// TestLocalFileCommitFails: a rename that fails (the target became a directory) leaves no
// temporary file behind.
func TestLocalFileCommitFails(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	must(t, err)
	defer root.Close()
	u, err := OpenLocalFile(root, "d", true, os.O_WRONLY)
	must(t, err)
	_, err = u.WriteAt([]byte("x"), 0)
	must(t, err)
	must(t, os.Mkdir(filepath.Join(dir, "d"), 0o750))
	must(t, os.WriteFile(filepath.Join(dir, "d", "in"), nil, 0o600))
	if err := u.Commit(); err == nil {
		t.Fatal("Commit over a non-empty directory succeeded")
	}
	if left := temps(t, dir); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func checkFile(t *testing.T, name, want string) {
	t.Helper()
	b, err := os.ReadFile(name)
	switch {
	case want == "-" && !os.IsNotExist(err):
		t.Fatalf("%s: exists (%q, %v), want missing", name, b, err)
	case want != "-" && (err != nil || string(b) != want):
		t.Fatalf("%s = %q, %v; want %q", name, b, err, want)
	}
}
