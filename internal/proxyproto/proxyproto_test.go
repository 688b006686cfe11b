package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func proxyV2(cmd, fam byte, addrs []byte) []byte {
	b := append([]byte(nil), V2Signature...)
	b = append(b, 0x20|cmd, fam, 0, 0)
	binary.BigEndian.PutUint16(b[14:], uint16(len(addrs)))
	return append(b, addrs...)
}

func TestReadProxyHeader(t *testing.T) {
	t.Parallel()
	v4 := []byte{192, 0, 2, 1, 198, 51, 100, 2, 0x30, 0x39, 0x00, 0x15}
	v6 := append(append(netip.MustParseAddr("2001:db8::1").AsSlice(), netip.MustParseAddr("2001:db8::2").AsSlice()...), 0x30, 0x39, 0x00, 0x15)
	tests := []struct {
		name string
		in   []byte
		want string // "" for the zero AddrPort
		err  bool
	}{
		{"v1 tcp4", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 12345 21\r\n"), "192.0.2.1:12345", false},
		{"v1 tcp6", []byte("PROXY TCP6 2001:db8::1 2001:db8::2 12345 21\r\n"), "[2001:db8::1]:12345", false},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), "", false},
		{"v1 family mismatch", []byte("PROXY TCP4 2001:db8::1 2001:db8::2 1 2\r\n"), "", true},
		{"v1 bad port", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 99999 21\r\n"), "", true},
		{"v1 leading zero port", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 0123 21\r\n"), "", true},
		{"v1 too long", []byte("PROXY TCP4 " + strings.Repeat("1", 120) + "\r\n"), "", true},
		{"v1 no crlf", []byte("PROXY TCP4 192.0.2.1 198.51.100.2 1 2"), "", true},
		{"v2 tcp4", proxyV2(1, 0x11, v4), "192.0.2.1:12345", false},
		{"v2 tcp6", proxyV2(1, 0x21, v6), "[2001:db8::1]:12345", false},
		{"v2 local", proxyV2(0, 0x00, nil), "", false},
		{"v2 short", proxyV2(1, 0x11, v4[:6]), "", true},
		{"v2 udp", proxyV2(1, 0x12, v4), "", true},
		{"v2 bad command", proxyV2(2, 0x11, v4), "", true},
		{"no header", []byte("USER alice\r\n"), "", true},
		{"empty", nil, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ap, err := ReadHeader(bytes.NewReader(tt.in))
			if tt.err {
				if !errors.Is(err, ErrHeader) {
					t.Fatalf("err = %v, want ErrHeader", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := ""
			if ap.IsValid() {
				got = ap.String()
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestProxyHeaderReadsNoFurther: the bytes behind the header (a TLS ClientHello)
// stay unread.
func TestProxyHeaderReadsNoFurther(t *testing.T) {
	t.Parallel()
	for _, hdr := range [][]byte{[]byte("PROXY TCP4 192.0.2.1 198.51.100.2 1 2\r\n"), proxyV2(1, 0x11, make([]byte, 12))} {
		r := bytes.NewReader(append(hdr, "NEXT"...))
		if _, err := ReadHeader(r); err != nil {
			t.Fatal(err)
		}
		rest := make([]byte, 8)
		n, _ := r.Read(rest)
		if string(rest[:n]) != "NEXT" {
			t.Fatalf("after the header: %q", rest[:n])
		}
	}
}

func FuzzProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 198.51.100.2 12345 21\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 12345 21\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(proxyV2(1, 0x11, []byte{192, 0, 2, 1, 198, 51, 100, 2, 0x30, 0x39, 0x00, 0x15}))
	f.Add(proxyV2(0, 0, nil))
	f.Add(proxyV2(1, 0x21, make([]byte, 36)))
	f.Fuzz(func(t *testing.T, in []byte) {
		ap, err := ReadHeader(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrHeader) {
				t.Fatalf("error %v does not wrap ErrHeader", err)
			}
			return
		}
		if ap.IsValid() && (ap.Addr().Zone() != "" || ap.Addr().Is4In6()) {
			t.Fatalf("accepted address %v", ap)
		}
		// A v1 header that names an address formats back into one that parses alike.
		if ap.IsValid() && bytes.HasPrefix(in, []byte("PROXY ")) {
			fam, dst := "TCP4", "0.0.0.0"
			if ap.Addr().Is6() {
				fam, dst = "TCP6", "::"
			}
			again, err := ParseV1("PROXY " + fam + " " + ap.Addr().String() + " " + dst + " " + itoa(ap.Port()) + " 21")
			if err != nil || again != ap {
				t.Fatalf("%v does not round-trip: %v, %v", ap, again, err)
			}
		}
	})
}

func itoa(p uint16) string { return strconv.Itoa(int(p)) }

func TestTrusted(t *testing.T) {
	t.Parallel()
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::1/128")}
	for addr, want := range map[string]bool{
		"10.1.2.3": true, "11.0.0.1": false, "2001:db8::1": true, "2001:db8::2": false,
	} {
		if got := Trusted(trusted, netip.MustParseAddr(addr)); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", addr, got, want)
		}
	}
	if Trusted(nil, netip.MustParseAddr("127.0.0.1")) {
		t.Error("no prefixes trust no one")
	}
}
