package exepages

import (
	"reflect"
	"testing"
)

const smapsSample = `00400000-00a55000 r-xp 00000000 fe:00 4242                       /srv/bin/djftpd
Size:               6484 kB
Rss:                4096 kB
Anonymous:             0 kB
VmFlags: rd ex mr mw me
00a55000-00f3c000 r--p 00655000 fe:00 4242                       /srv/bin/djftpd
Rss:                2048 kB
Anonymous:             0 kB
00f3c000-00f9c000 rw-p 00b3c000 fe:00 4242                       /srv/bin/djftpd
Rss:                 300 kB
Anonymous:           100 kB
00f9c000-00fa0000 r--p 00b9c000 fe:00 4242                       /srv/bin/djftpd
Rss:                  16 kB
Anonymous:            16 kB
00fa0000-00fd0000 rw-p 00000000 00:00 0
Rss:                 100 kB
Anonymous:           100 kB
7f0000000000-7f0000001000 r--p 00000000 fe:00 99                         /usr/lib/lib with space.so
Rss:                   4 kB
Anonymous:             0 kB
7f0000002000-7f0000003000 r-xp 00000000 00:1d 77                         /srv/bin/djftpd (deleted)
Rss:                   4 kB
Anonymous:             0 kB
7fff0000000-7fff0001000 r--s 00000000 fe:00 4242                       /srv/bin/djftpd
Rss:                   4 kB
Anonymous:             0 kB
`

func TestParseSmaps(t *testing.T) {
	t.Parallel()
	maps, err := parseSmaps([]byte(smapsSample))
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 8 {
		t.Fatalf("%d mappings, want 8", len(maps))
	}
	want := mapping{start: 0x400000, end: 0xa55000, perms: "r-xp", dev: "fe:00", inode: 4242,
		path: "/srv/bin/djftpd", rss: 4096 << 10}
	if maps[0] != want {
		t.Errorf("first mapping %+v, want %+v", maps[0], want)
	}
	if maps[4].path != "" || maps[5].path != "/usr/lib/lib with space.so" || maps[6].path != "/srv/bin/djftpd (deleted)" {
		t.Errorf("paths %q %q %q", maps[4].path, maps[5].path, maps[6].path)
	}
	for _, bad := range []string{"Rss: 4 kB\n", "zz-00 r--p 0 fe:00 1 /x\n", "00-10 r--p\n", "00-10 r--p 0 fe:00 1 /x\nRss: x kB\n"} {
		if _, err := parseSmaps([]byte(bad)); err == nil {
			t.Errorf("parseSmaps(%q) succeeded", bad)
		}
	}
}

func TestSelectMappings(t *testing.T) {
	t.Parallel()
	maps, err := parseSmaps([]byte(smapsSample))
	if err != nil {
		t.Fatal(err)
	}
	starts := func(ms []mapping) []uint64 {
		var s []uint64
		for _, m := range ms {
			s = append(s, m.start)
		}
		return s
	}
	for _, tc := range []struct {
		name    string
		exe     exeID
		want    []uint64
		skipped int
	}{
		// Text and rodata; never the data segment (rw-p), a RELRO-like page with anonymous
		// pages, a shared mapping, another file or an anonymous mapping.
		{"by device and inode", exeID{dev: "fe:00", inode: 4242, path: "/elsewhere"}, []uint64{0x400000, 0xa55000}, 1},
		{"by path (overlayfs)", exeID{dev: "00:2a", inode: 1, path: "/srv/bin/djftpd"}, []uint64{0x400000, 0xa55000}, 1},
		{"replaced on disk", exeID{dev: "00:1d", inode: 77, path: "/srv/bin/djftpd (deleted)"}, []uint64{0x7f0000002000}, 0},
		{"not mapped", exeID{dev: "fe:00", inode: 1, path: "/other"}, nil, 0},
		{"anonymous inode 0 never matches", exeID{dev: "00:00", inode: 0, path: "/other"}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, skipped := selectMappings(maps, tc.exe)
			if !reflect.DeepEqual(starts(got), tc.want) || skipped != tc.skipped {
				t.Errorf("selected %x, skipped %d; want %x, %d", starts(got), skipped, tc.want, tc.skipped)
			}
		})
	}
}
