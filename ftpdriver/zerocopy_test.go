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

// procIO is one counter of this process's /proc/self/io: syscr counts read-like system
// calls (sendfile(2) once per call, read(2) once per buffer); wchar the bytes passed to
// write(2) and its kin, which splice(2) into a file does not count.
func procIO(t *testing.T, key string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/io")
	if err != nil {
		t.Skipf("no /proc/self/io: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+": "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Skipf("no %s in /proc/self/io", key)
	return 0
}

func readSyscalls(t *testing.T) int64 { return procIO(t, "syscr") }

// TestRETRIsZeroCopy pins that RETR hands an *os.File to the *net.TCPConn, so the
// kernel sends the file with sendfile(2): a 64 MiB download then costs this process a
// few dozen read calls, not the 2,048 a 32 KiB copy loop needs. The client is curl, in
// another process, so its own reads do not count here.
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

// TestSTORIsZeroCopy pins that STOR hands the *net.TCPConn to (*os.File).ReadFrom, so
// the kernel moves the upload into the file with splice(2): a 64 MiB upload then writes
// almost nothing through write(2) in this process (wchar counts only the replies), where
// a copy loop would write all 64 MiB. The client is curl, in another process.
func TestSTORIsZeroCopy(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl not installed")
	}
	ts := newTestServer(t)
	const size = 64 << 20
	src := filepath.Join(t.TempDir(), "up.bin")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	url := fmt.Sprintf("ftp://alice:alice-pw@%s/up.bin", ts.addr)
	before := procIO(t, "wchar")
	if out, err := exec.Command(curl, "-sS", "-T", src, url).CombinedOutput(); err != nil {
		t.Fatalf("curl: %v %s", err, out)
	}
	if written := procIO(t, "wchar") - before; written > 1<<20 {
		t.Errorf("%d bytes written with write(2) for a 64 MiB STOR: the copy no longer reaches splice(2)", written)
	}
	if fi, err := os.Stat(filepath.Join(ts.home, "up.bin")); err != nil || fi.Size() != size {
		t.Fatalf("uploaded file: %v %v", fi, err)
	}
}
