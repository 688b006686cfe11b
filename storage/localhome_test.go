package storage

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// openFDs counts this process's open descriptors. The tests using it do not run in
// parallel, so only what they open moves it.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(entries)
}

func newTestLocal(t *testing.T) (*Local, string) {
	t.Helper()
	dir := t.TempDir()
	l, err := NewLocal(dir, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l, dir
}

func openHome(t *testing.T, l *Local, home string) *LocalFS {
	t.Helper()
	h, err := l.Home(context.Background(), home, true)
	if err != nil {
		t.Fatal(err)
	}
	return h.(*LocalFS)
}

// The sessions of one home hold one descriptor between them, and the last to close
// closes it; a session closed twice releases once.
func TestLocalHomeSharesOneRoot(t *testing.T) {
	for _, n := range []int{1, 2, 10} {
		l, dir := newTestLocal(t)
		home := filepath.Join(dir, "alice")
		openHome(t, l, home).Close() // created: the count below is of opening only
		before := openFDs(t)
		sessions := make([]*LocalFS, n)
		for i := range sessions {
			sessions[i] = openHome(t, l, home)
			if sessions[i].Root != sessions[0].Root {
				t.Fatalf("%d sessions: session %d has a root of its own", n, i)
			}
		}
		if got := openFDs(t) - before; got != 1 {
			t.Fatalf("%d sessions of one home hold %d descriptors, want 1", n, got)
		}
		for _, s := range sessions[:n-1] {
			_ = s.Close()
			_ = s.Close() // twice: must not take the others' reference
		}
		last := sessions[n-1]
		if _, err := last.Stat(context.Background(), "."); err != nil {
			t.Fatalf("%d sessions: the last one lost its home when the others closed: %v", n, err)
		}
		if err := last.Close(); err != nil {
			t.Fatal(err)
		}
		if got := openFDs(t) - before; got != 0 {
			t.Fatalf("%d sessions all closed: %d descriptors still open", n, got)
		}
		if _, err := last.Root.Stat("."); !errors.Is(err, os.ErrClosed) {
			t.Fatalf("%d sessions: the root after the last close: %v, want closed", n, err)
		}
	}
}

// A home removed or replaced since it was opened is opened afresh: the new session
// works in the directory at the path now, the old one keeps the directory it had, and
// a symlink out of the home root is refused as it always was.
func TestLocalHomeReplaced(t *testing.T) {
	tests := []struct {
		name    string
		replace func(t *testing.T, home, outside string)
		wantErr bool
		oldAt   string // where the old session's writes land now, relative to home ("" unchecked)
	}{
		{name: "removed and recreated", replace: func(t *testing.T, home, _ string) {
			must(t, os.RemoveAll(home))
			must(t, os.Mkdir(home, 0o750))
		}},
		{name: "removed, created at login", replace: func(t *testing.T, home, _ string) {
			must(t, os.RemoveAll(home))
		}},
		{name: "renamed away and recreated", oldAt: "../alice.old", replace: func(t *testing.T, home, _ string) {
			must(t, os.Rename(home, home+".old"))
			must(t, os.Mkdir(home, 0o750))
		}},
		{name: "replaced by a symlink out of the root", wantErr: true, replace: func(t *testing.T, home, outside string) {
			must(t, os.Rename(home, home+".old"))
			must(t, os.Symlink(outside, home))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, dir := newTestLocal(t)
			home, outside := filepath.Join(dir, "alice"), t.TempDir()
			old := openHome(t, l, home)
			defer old.Close()
			tt.replace(t, home, outside)
			h, err := l.Home(context.Background(), home, true)
			if tt.wantErr {
				if err == nil {
					h.Close()
					t.Fatal("login followed the symlink out of the home root")
				}
				if entries, _ := os.ReadDir(outside); len(entries) != 0 {
					t.Fatalf("outside the root: %v", entries)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			cur := h.(*LocalFS)
			defer cur.Close()
			if cur.Root == old.Root {
				t.Fatal("the new session got the root of the replaced home")
			}
			must(t, cur.Root.WriteFile("new", []byte("new"), 0o640))
			if b, err := os.ReadFile(filepath.Join(home, "new")); err != nil || string(b) != "new" {
				t.Fatalf("written through the new session, on disk: %q, %v", b, err)
			}
			if fi, err := os.Stat(home); err != nil || fi.Mode().Perm() != 0o750 {
				t.Fatalf("home: %v, %v; want a 0750 directory", fi, err)
			}
			if tt.oldAt != "" {
				must(t, old.Root.WriteFile("old", []byte("old"), 0o640))
				if _, err := os.Stat(filepath.Join(home, tt.oldAt, "old")); err != nil {
					t.Fatalf("the old session's directory: %v", err)
				}
				if _, err := os.Stat(filepath.Join(home, "old")); err == nil {
					t.Fatal("the old session wrote into the new home")
				}
			}
		})
	}
}

// Logins and logouts of one home at once, some while the home is replaced: every
// session gets a usable home, and when all have ended no descriptor stays open.
func TestLocalHomeConcurrent(t *testing.T) {
	for _, churn := range []bool{false, true} {
		l, dir := newTestLocal(t)
		home := filepath.Join(dir, "alice")
		openHome(t, l, home).Close()
		before := openFDs(t)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		if churn { // rename the home away and recreate it, again and again
			must(t, os.Mkdir(filepath.Join(dir, "old"), 0o750))
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					_ = os.Rename(home, filepath.Join(dir, "old", string(rune('a'+i%26))))
					_ = os.Mkdir(home, 0o750)
				}
			}()
		}
		var logins sync.WaitGroup
		for range 8 {
			logins.Add(1)
			go func() {
				defer logins.Done()
				for range 200 {
					h, err := l.Home(context.Background(), home, true)
					if err != nil {
						if !churn { // with churn the home can vanish between create and open
							t.Error(err)
						}
						continue
					}
					if _, err := h.Stat(context.Background(), "."); err != nil {
						t.Errorf("a session's home before it closed: %v", err)
					}
					_ = h.Close()
				}
			}()
		}
		logins.Wait()
		close(stop)
		wg.Wait()
		if got := openFDs(t) - before; got != 0 {
			t.Fatalf("churn %v: %d descriptors open after every session ended", churn, got)
		}
		if len(l.homes) != 0 {
			t.Fatalf("churn %v: %d homes still shared", churn, len(l.homes))
		}
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
