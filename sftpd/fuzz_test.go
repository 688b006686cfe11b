package sftpd

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pkg/sftp"

	"github.com/djftpd/djftpd/djangoclient"
)

// FuzzPaths sends fuzzed paths to every handler: no panic, and nothing outside the home
// is created, changed or removed, whatever the path (pkg/sftp does the framing and hands
// paths through as the client sent them).
func FuzzPaths(f *testing.F) {
	for _, s := range []string{"/f", "../x", "/../../etc/passwd", "d/../../x", "out/x", "abs", "\x00", "a\x00b", "//", ".", "", "link/..", "d/./../f"} {
		f.Add(s, "/g")
	}
	f.Fuzz(func(t *testing.T, p, target string) {
		base := t.TempDir()
		home := filepath.Join(base, "home")
		must(t, os.Mkdir(home, 0o750))
		must(t, os.WriteFile(filepath.Join(base, "sentinel"), []byte("s"), 0o644))
		must(t, os.WriteFile(filepath.Join(home, "f"), []byte("0123456789"), 0o640))
		must(t, os.Mkdir(filepath.Join(home, "d"), 0o750))
		must(t, os.Symlink("../sentinel", filepath.Join(home, "out")))
		must(t, os.Symlink(base, filepath.Join(home, "abs")))
		root, err := os.OpenRoot(home)
		must(t, err)
		defer root.Close()
		h := &handlers{user: &testUser{perms: djangoclient.PermLetters, root: root}, atomicUploads: true, now: time.Now, open: new(atomic.Int64)}
		run := func(method string, flags uint32) {
			r := sftp.NewRequest(method, p)
			r.Target = target
			r.Flags = flags
			switch method {
			case "Get":
				if rd, err := h.Fileread(r); err == nil {
					_, _ = rd.ReadAt(make([]byte, 4), 0)
					rd.(*reader).Close()
				}
			case "Put":
				if w, err := h.openWrite(r, false); err == nil {
					_, _ = w.WriteAt([]byte("x"), 0)
					w.Close()
				}
			case "List", "Stat":
				_, _ = h.Filelist(r)
			case "Lstat":
				_, _ = h.Lstat(r)
			case "Readlink":
				_, _ = h.Readlink(p)
			case "Realpath":
				_, _ = h.RealPath(p)
			default:
				_ = h.Filecmd(r)
			}
		}
		for _, m := range []string{"Get", "List", "Stat", "Lstat", "Readlink", "Realpath", "Mkdir", "Setstat", "Symlink", "Link"} {
			run(m, 0)
		}
		run("Put", 0x08|0x10|0x02) // CREAT|TRUNC|WRITE
		run("Rename", 0)
		run("Remove", 0)
		run("Rmdir", 0)
		entries, err := os.ReadDir(base)
		must(t, err)
		if len(entries) != 2 {
			t.Fatalf("something was created beside the home: %v", entries)
		}
		if b, err := os.ReadFile(filepath.Join(base, "sentinel")); err != nil || string(b) != "s" {
			t.Fatalf("sentinel outside the home changed: %q, %v", b, err)
		}
	})
}
