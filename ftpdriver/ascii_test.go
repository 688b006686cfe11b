package ftpdriver

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

func TestASCIIConversion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, disk, wire string
	}{
		{"empty", "", ""},
		{"one line", "a\n", "a\r\n"},
		{"no final newline", "a\nb", "a\r\nb"},
		{"blank lines", "\n\n", "\r\n\r\n"},
		{"bare CR kept", "a\rb\n", "a\rb\r\n"},
		{"binary-ish", "\x00\xff\n\x01", "\x00\xff\r\n\x01"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, wrap := range []func(io.Reader) io.Reader{
				func(r io.Reader) io.Reader { return r },
				iotest.OneByteReader,
				iotest.HalfReader,
			} {
				got, err := io.ReadAll(newToNetASCII(wrap(bytes.NewReader([]byte(tt.disk)))))
				if err != nil || string(got) != tt.wire {
					t.Errorf("to wire %q = %q, %v; want %q", tt.disk, got, err, tt.wire)
				}
				back, err := io.ReadAll(newFromNetASCII(wrap(bytes.NewReader([]byte(tt.wire)))))
				if err != nil || string(back) != tt.disk {
					t.Errorf("from wire %q = %q, %v; want %q", tt.wire, back, err, tt.disk)
				}
			}
		})
	}
}

func TestFromNetASCIIEdges(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"a\r\n":         "a\n",
		"a\r":           "a\r", // a CR at the very end stays
		"a\r\r\n":       "a\r\n",
		"\r\r\r":        "\r\r\r",
		"x\r\ny\r\n":    "x\ny\n",
		"win\r\nunix\n": "win\nunix\n",
	} {
		got, err := io.ReadAll(newFromNetASCII(iotest.OneByteReader(bytes.NewReader([]byte(in)))))
		if err != nil || string(got) != want {
			t.Errorf("%q = %q, %v; want %q", in, got, err, want)
		}
	}
	// A file with CRLF line ends is sent unchanged: no CR is doubled.
	got, _ := io.ReadAll(newToNetASCII(bytes.NewReader([]byte("dos\r\nfile\r\n"))))
	if string(got) != "dos\r\nfile\r\n" {
		t.Errorf("CRLF file sent as %q", got)
	}
}

// oneShotFromNet is the reference CRLF → LF conversion of a whole stream.
func oneShotFromNet(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// oneShotToNet is the reference bare-LF → CRLF conversion of a whole stream.
func oneShotToNet(b []byte) []byte {
	var out []byte
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// FuzzASCII: the streaming converters equal the one-shot conversions whatever the
// chunking (the client decides where its packets end).
func FuzzASCII(f *testing.F) {
	for _, s := range []string{"", "a\r\nb", "\r", "\r\r\n\n", "x\ny\rz\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, wrap := range []func(io.Reader) io.Reader{
			func(r io.Reader) io.Reader { return r }, iotest.OneByteReader, iotest.HalfReader,
		} {
			got, err := io.ReadAll(newFromNetASCII(wrap(bytes.NewReader(in))))
			if err != nil || !bytes.Equal(got, oneShotFromNet(in)) {
				t.Fatalf("from wire %q = %q, %v; want %q", in, got, err, oneShotFromNet(in))
			}
			got, err = io.ReadAll(newToNetASCII(wrap(bytes.NewReader(in))))
			if err != nil || !bytes.Equal(got, oneShotToNet(in)) {
				t.Fatalf("to wire %q = %q, %v; want %q", in, got, err, oneShotToNet(in))
			}
		}
	})
}
