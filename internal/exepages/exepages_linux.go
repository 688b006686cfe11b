//go:build linux

package exepages

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// Release advises MADV_DONTNEED on the executable's private read-only mappings that hold no
// anonymous page (see the package doc), and says what it advised. It stops at the first
// mapping the kernel refuses (a locked mapping: EINVAL).
func Release() (Result, error) {
	exe, err := selfExe()
	if err != nil {
		return Result{}, err
	}
	b, err := os.ReadFile("/proc/self/smaps")
	if err != nil {
		return Result{}, fmt.Errorf("read own smaps: %w", err)
	}
	maps, err := parseSmaps(b)
	if err != nil {
		return Result{}, err
	}
	advise, skipped := selectMappings(maps, exe)
	res := Result{Skipped: skipped}
	for _, m := range advise {
		// A raw syscall: unix.Madvise takes a []byte, which an address range of code is not.
		if _, _, e := unix.Syscall(unix.SYS_MADVISE, uintptr(m.start), uintptr(m.end-m.start), unix.MADV_DONTNEED); e != 0 {
			return res, fmt.Errorf("madvise %x-%x %s: %w", m.start, m.end, m.perms, e)
		}
		res.Mappings++
		res.Bytes += m.rss
	}
	return res, nil
}

// selfExe identifies the running executable through /proc/self/exe.
func selfExe() (exeID, error) {
	path, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return exeID{}, fmt.Errorf("own executable: %w", err)
	}
	fi, err := os.Stat("/proc/self/exe")
	if err != nil {
		return exeID{}, fmt.Errorf("own executable: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return exeID{}, fmt.Errorf("own executable: no device and inode in %T", fi.Sys())
	}
	dev := uint64(st.Dev) // uint32 on some architectures
	return exeID{dev: fmt.Sprintf("%02x:%02x", unix.Major(dev), unix.Minor(dev)), inode: st.Ino, path: path}, nil
}
