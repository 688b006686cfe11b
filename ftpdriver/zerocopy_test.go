package ftpdriver

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// readSyscalls is this process's count of read-like system calls (syscr in
// /proc/self/io). sendfile(2) counts once per call; read(2) once per 32 KiB buffer.
func readSyscalls(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "syscr: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Skip("no syscr in /proc/self/io")
	return 0
}

// TestRETRIsZeroCopy pins that RETR hands an *os.File to the *net.TCPConn, so the
// kernel sends the file with sendfile(2): a 64 MiB download then costs this process a
// few dozen read calls, not the 2,048 a 32 KiB copy loop needs. The client is curl, in
// another process, so its own reads do not count here. (STOR's splice(2) counts one read
// per 64 KiB pipe load, too close to a copy loop to tell apart this way; bench/ shows it
// with strace.)
func TestRETRIsZeroCopy(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	ts := newTestServer(t)
	const size = 64 << 20
	if err := os.MkdirAll(ts.home, 0o750); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(filepath.Join(ts.home, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	url := fmt.Sprintf("ftp://alice:alice-pw@%s/big.bin", ts.addr)
	before := readSyscalls(t)
	if out, err := exec.Command(curl, "-sS", "-o", os.DevNull, url).CombinedOutput(); err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	if reads := readSyscalls(t) - before; reads > 400 {
		t.Errorf("%d read calls for a 64 MiB RETR: the copy no longer reaches sendfile(2)", reads)
	}
}
