// Package exepages takes the executable's read-only pages out of the process's page tables.
//
// A static Go binary maps its text, rodata and pclntab from the page-cached file. Running
// the init code of every linked package (djftpd links ~160) touches pages all over them, and
// each fault maps the 64 KiB around it (the kernel's fault-around): ≈ 13.6 MB of RSS before
// the first session, most of it never run again. Release drops the process's mappings of
// those pages (madvise MADV_DONTNEED): the pages stay in the page cache, and what the process
// runs later faults back in (a minor fault, no I/O while the page stays cached).
//
// It never changes what the process reads: only private, non-writable mappings of the
// executable whose pages are all the file's own (no anonymous copy-on-write page, as a
// relocated RELRO page or a debugger's breakpoint would be) are advised, and such a page
// re-faults from the same file, which cannot change while it runs (Linux refuses to open a
// running executable for writing: ETXTBSY). The kernel itself unmaps such clean file pages
// under memory pressure and faults them back the same way: the release adds no case the
// process does not already meet.
package exepages

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Result says what one Release did.
type Result struct {
	Mappings int    // mappings advised
	Bytes    uint64 // their resident bytes before (smaps Rss), the most RSS can drop
	Skipped  int    // the executable's read-only mappings left alone (anonymous pages)
}

// mapping is one entry of /proc/<pid>/smaps.
type mapping struct {
	start, end uint64
	perms      string // "r-xp"
	dev        string // "fe:00", major:minor in hex
	inode      uint64
	path       string
	rss, anon  uint64 // bytes
}

// exeID names the executable: its device ("fe:00", as smaps writes it), inode and path
// (the link /proc/self/exe, " (deleted)" included when it was replaced).
type exeID struct {
	dev   string
	inode uint64
	path  string
}

// isExe reports whether m maps the executable: its device and inode, or its path where the
// two can disagree (overlayfs has shown the lower file's device and inode in smaps while
// stat gives the overlay's).
func (m mapping) isExe(exe exeID) bool {
	return (m.dev == exe.dev && m.inode == exe.inode && m.inode != 0) || (m.path != "" && m.path == exe.path)
}

// selectMappings returns the mappings Release may advise, and how many of the executable's
// read-only mappings it must leave because they hold anonymous pages.
func selectMappings(maps []mapping, exe exeID) (advise []mapping, skipped int) {
	for _, m := range maps {
		if len(m.perms) != 4 || m.perms[0] != 'r' || m.perms[1] != '-' || m.perms[3] != 'p' || !m.isExe(exe) {
			continue
		}
		if m.anon != 0 {
			skipped++
			continue
		}
		advise = append(advise, m)
	}
	return advise, skipped
}

// parseSmaps reads the text of /proc/<pid>/smaps: a header line per mapping ("start-end
// perms offset dev inode [path]"), then "Key: value kB" lines, of which Rss and Anonymous
// are kept.
func parseSmaps(b []byte) ([]mapping, error) {
	var maps []mapping
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		key, value, isField := strings.Cut(line, ":")
		if isField && !strings.Contains(key, " ") && !strings.Contains(key, "-") {
			if len(maps) == 0 {
				return nil, fmt.Errorf("smaps: field %q before any mapping", key)
			}
			if err := maps[len(maps)-1].setField(key, value); err != nil {
				return nil, err
			}
			continue
		}
		m, err := parseHeader(line)
		if err != nil {
			return nil, err
		}
		maps = append(maps, m)
	}
	return maps, sc.Err()
}

// parseHeader parses "start-end perms offset dev inode [path]".
func parseHeader(line string) (mapping, error) {
	f := strings.Fields(line)
	if len(f) < 5 {
		return mapping{}, fmt.Errorf("smaps: unexpected line %q", line)
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	inode, err3 := strconv.ParseUint(f[4], 10, 64)
	if !ok || err1 != nil || err2 != nil || err3 != nil || end < start {
		return mapping{}, fmt.Errorf("smaps: unexpected mapping %q", line)
	}
	return mapping{start: start, end: end, perms: f[1], dev: f[3], inode: inode, path: afterFields(line, 5)}, nil
}

// afterFields is line after its first n space-separated fields, leading spaces removed: a
// mapping's path, which may hold spaces.
func afterFields(line string, n int) string {
	rest := line
	for range n {
		rest = strings.TrimLeft(rest, " ")
		i := strings.IndexByte(rest, ' ')
		if i < 0 {
			return ""
		}
		rest = rest[i:]
	}
	return strings.TrimLeft(rest, " ")
}

// setField keeps Rss and Anonymous ("  1234 kB").
func (m *mapping) setField(key, value string) error {
	if key != "Rss" && key != "Anonymous" {
		return nil
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
	if err != nil {
		return fmt.Errorf("smaps: %s %q: %w", key, value, err)
	}
	if key == "Rss" {
		m.rss = n << 10
	} else {
		m.anon = n << 10
	}
	return nil
}
