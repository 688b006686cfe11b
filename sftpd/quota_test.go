package sftpd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pkg/sftp"

	"github.com/djftpd/djftpd/djangoclient"
)

// quotaUser is a testUser with a quota record like the core's: usage, reservations, and
// chunks of at most 4 bytes so uploads reserve several times.
type quotaUser struct {
	*testUser
	mu                    sync.Mutex
	limit, used, reserved int64
}

type quotaGuard struct {
	u        *quotaUser
	credit   int64
	reserved int64
}

func (u *quotaUser) GuardQuota(credit int64) (QuotaGuard, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.used-credit >= u.limit && credit == 0 {
		return nil, errors.New("quota exceeded")
	}
	return &quotaGuard{u: u, credit: credit}, nil
}

func (u *quotaUser) AddUsage(d int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.used += d
}

func (g *quotaGuard) Reserve() int64 {
	g.u.mu.Lock()
	defer g.u.mu.Unlock()
	left := g.u.limit - (g.u.used - g.credit) - g.u.reserved
	r := min(left, 4)
	if r <= 0 {
		return 0
	}
	g.u.reserved += r
	g.reserved += r
	return r
}

func (g *quotaGuard) Release(delta int64) {
	g.u.mu.Lock()
	defer g.u.mu.Unlock()
	g.u.reserved -= g.reserved
	g.u.used += delta
}

func serveQuota(t *testing.T, dir string, limit, used int64) (*sftp.Client, *quotaUser) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	must(t, err)
	t.Cleanup(func() { root.Close() }) // after the server's end (cleanups run last first)
	u := &quotaUser{testUser: &testUser{perms: djangoclient.PermLetters, root: root}, limit: limit, used: used}
	c, _ := servePipe(t, newHandlers(u, true, nil))
	return c, u
}

// TestQuota: exactly the quota fits; one byte more fails with SSH_FX_FAILURE and a clear
// message and leaves nothing; replacing a file is credited its old size; removing frees.
func TestQuota(t *testing.T) {
	dir := fixture(t) // f holds 10 bytes
	c, u := serveQuota(t, dir, 20, 10)
	must(t, writeAt(c, "/exact", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, "0123456789", 0))
	if u.used != 20 || u.reserved != 0 {
		t.Fatalf("used %d reserved %d, want 20 0", u.used, u.reserved)
	}

	err := writeAt(c, "/over", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, "x", 0)
	var se *sftp.StatusError
	if !errors.As(err, &se) || se.FxCode() != sftp.ErrSSHFxFailure || !strings.Contains(err.Error(), "quota") {
		t.Fatalf("one byte over quota: %v, want SSH_FX_FAILURE naming the quota", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "over")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("an upload over quota left a file")
	}
	assertNoTemp(t, dir)

	// Replacing f (10 bytes) by 10 bytes fits at a full quota.
	must(t, writeAt(c, "/f", os.O_WRONLY|os.O_TRUNC, "abcdefghij", 0))
	// An in-place write past the end does not.
	if err := writeAt(c, "/f", os.O_WRONLY, "k", 10); err == nil {
		t.Fatal("in-place growth past the quota accepted")
	}
	must(t, c.Remove("/exact"))
	must(t, writeAt(c, "/after", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, "0123456789", 0))
	if u.used != 20 || u.reserved != 0 {
		t.Fatalf("used %d reserved %d, want 20 0", u.used, u.reserved)
	}
}
